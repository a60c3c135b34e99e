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

# What world models read and write (Dreamer's RSSM, chapter 13; torchrl's keys).
PIXELS, RECO_PIXELS, ENCODED_LATENTS = "pixels", "reco_pixels", "encoded_latents"
STATE, BELIEF = "state", "belief"  # the RSSM's stochastic state and deterministic belief
PRIOR_MEAN, PRIOR_STD = "prior_mean", "prior_std"
POSTERIOR_MEAN, POSTERIOR_STD = "posterior_mean", "posterior_std"
