"""Every key string rlmods reads or writes, defined once (chapter 1's key contract).

torchrl's default keys, so that rlmods and torchrl modules read each other's tensordicts.
Every chapter imports its keys from here instead of retyping them.
"""

# What an environment step reads and writes.
ACTION, OBSERVATION, REWARD, NEXT = "action", "observation", "reward", "next"
DONE, TERMINATED, TRUNCATED = "done", "terminated", "truncated"
IS_INIT = "is_init"  # True on the first step of a trajectory (InitTracker)

# What actors and value heads write.
ACTION_MASK = "action_mask"
ACTION_VALUE, CHOSEN_ACTION_VALUE = "action_value", "chosen_action_value"
LOC, SCALE = "loc", "scale"
STATE_VALUE, STATE_ACTION_VALUE = "state_value", "state_action_value"

IGNORE = "_"  # an out_key that is not written

# What recurrent modules read and write (chapter *Recurrent modules*): LSTMModule's two
# states and GRUModule's one.
RECURRENT_STATE_H, RECURRENT_STATE_C = "recurrent_state_h", "recurrent_state_c"
RECURRENT_STATE = "recurrent_state"
# What a planner reads from its advantage module (MPPI).
ADVANTAGE = "advantage"
# What sequence models read and write (chapter 14): the Decision Transformer's third input,
# and the keys of an LM-head actor-critic (a language model's tokens, its padding mask, the
# last token's hidden state "x" and the next-token logits), torchrl's names.
RETURN_TO_GO = "return_to_go"
INPUT_IDS, ATTENTION_MASK = "input_ids", "attention_mask"
LM_HIDDEN, LOGITS = "x", "logits"
# Multi-agent tensordicts (chapter Multi-agent networks): per-agent entries under "agents",
# the global state the QMIX mixer reads.
AGENTS, STATE = "agents", "state"
# What world models read and write (Dreamer's RSSM, chapter 13; torchrl's keys).
PIXELS, RECO_PIXELS, ENCODED_LATENTS = "pixels", "reco_pixels", "encoded_latents"
BELIEF = "belief"  # the RSSM's deterministic belief; its stochastic state is STATE above
PRIOR_MEAN, PRIOR_STD = "prior_mean", "prior_std"
POSTERIOR_MEAN, POSTERIOR_STD = "posterior_mean", "posterior_std"
