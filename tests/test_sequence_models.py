"""rlmods.sequence_models against torchrl 0.14 and Hugging Face's GPT-2 (the oracles)."""

import dataclasses

import pytest
import torch
import torchrl.modules as tm
import transformers
from tensordict import TensorDict
from tensordict.nn import InteractionType, TensorDictModule, set_interaction_type
from torch import nn
from torch.testing import assert_close

from rlmods import (ActorValueOperator, DecisionTransformer, DecisionTransformerInferenceWrapper,
                    DTActor, InvalidValueError, LMHeadActorValueOperator, OnlineDTActor,
                    SafeModule)
from rlmods.sequence_models import (ACTIVATIONS, ContextLengthError, GPT2Decoder,
                                    LastTokenHidden, masked_context, padding_mask)
from oracle_helpers import raised

transformers.logging.set_verbosity_error()

CONFIG = dict(n_embd=16, n_layer=2, n_head=2, n_inner=32, activation="relu", n_positions=30,
              resid_pdrop=0.1, attn_pdrop=0.1)
DT_KEYS = ["observation", "action", "return_to_go"]


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _inputs(batch, steps=6, state_dim=3, action_dim=2, seed=0):
    return (_randn(*batch, steps, state_dim, seed=seed), _randn(*batch, steps, action_dim,
                                                                seed=seed + 1),
            _randn(*batch, steps, 1, seed=seed + 2))


def _pair(name, config=CONFIG):
    """torchrl's model and ours with the same weights, both in eval mode (no dropout)."""
    torch.manual_seed(0)
    kwargs = {"config": config} if name == "DecisionTransformer" else {"transformer_config": config}
    theirs = getattr(tm, name)(3, 2, **kwargs).eval()
    ours = globals()[name](3, 2, **kwargs).eval()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _hf_lm(**kwargs):
    config = transformers.GPT2Config(n_embd=16, n_layer=2, n_head=2, vocab_size=11,
                                     n_positions=32, bos_token_id=0, eos_token_id=0, **kwargs)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config).eval()


class TinyLM(nn.Module):
    """An LM-head model built on rlmods' decoder: a ``.transformer`` and an ``.lm_head``."""

    def __init__(self, vocab_size=11, n_embd=16):
        super().__init__()
        self.transformer = GPT2Decoder(n_embd=n_embd, n_layer=2, n_head=2, n_positions=32,
                                       vocab_size=vocab_size)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)


# ---- the GPT-2 decoder against Hugging Face ------------------------------------------

@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_decoder_matches_gpt2_model_for_every_activation(activation):
    config = transformers.GPT2Config(n_embd=16, n_layer=2, n_head=4, n_inner=24, vocab_size=7,
                                     n_positions=12, activation_function=activation)
    theirs = transformers.GPT2Model(config).eval()
    ours = GPT2Decoder(n_embd=16, n_layer=2, n_head=4, n_inner=24, vocab_size=7, n_positions=12,
                       activation=activation).eval()
    ours.load_state_dict(theirs.state_dict())
    embeds = _randn(3, 12, 16)
    assert_close(ours(inputs_embeds=embeds), theirs(inputs_embeds=embeds).last_hidden_state)
    ids = torch.randint(0, 7, (2, 9), generator=torch.Generator().manual_seed(1))
    assert_close(ours(input_ids=ids), theirs(input_ids=ids).last_hidden_state)


def test_decoder_state_dicts_interchange_with_gpt2_model():
    theirs = transformers.GPT2Model(transformers.GPT2Config(n_embd=16, n_layer=3, n_head=2,
                                                            vocab_size=5, n_positions=8))
    ours = GPT2Decoder(n_embd=16, n_layer=3, n_head=2, vocab_size=5, n_positions=8)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict())  # strict, both ways
    ours.load_state_dict(theirs.state_dict())


def test_decoder_padding_matches_gpt2_model_on_real_tokens():
    theirs = _hf_lm().transformer
    ours = GPT2Decoder(n_embd=16, n_layer=2, n_head=2, vocab_size=11, n_positions=32).eval()
    ours.load_state_dict(theirs.state_dict())
    ids = torch.randint(0, 11, (3, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(3, 6, dtype=torch.long)
    mask[0, :2] = 0  # left padding
    mask[1, :1] = 0
    real = mask.bool()
    hidden = ours(input_ids=ids, attention_mask=mask)
    assert_close(hidden[real], theirs(input_ids=ids, attention_mask=mask).last_hidden_state[real])
    assert not hidden.isnan().any()  # padded queries see nothing: uniform weights, not NaN
    other = ids.clone()
    other[0, :2] = (ids[0, :2] + 1) % 11  # what sits under the padding changes nothing
    assert_close(ours(input_ids=other, attention_mask=mask)[real], hidden[real])


def test_decoder_is_causal():
    decoder = GPT2Decoder(n_embd=16, n_layer=2, n_head=2, vocab_size=11, n_positions=32).eval()
    x = _randn(2, 8, 16)
    y = x.clone()
    y[:, 5:] = _randn(2, 3, 16, seed=1)  # change the future
    assert_close(decoder(inputs_embeds=x)[:, :5], decoder(inputs_embeds=y)[:, :5])
    assert not torch.allclose(decoder(inputs_embeds=x)[:, 5:], decoder(inputs_embeds=y)[:, 5:])


def test_padding_mask_is_causal_and_hides_padding():
    mask = padding_mask(torch.tensor([[0, 1, 1, 1]]), torch.float32)  # (1, 1, 4, 4)
    allowed = mask[0, 0] == 0
    assert torch.equal(allowed, torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0],
                                              [0, 1, 1, 1]], dtype=torch.bool))
    assert mask.min() == torch.finfo(torch.float32).min


def test_decoder_dropout_is_on_in_training_only():
    decoder = GPT2Decoder(n_embd=16, n_layer=1, n_head=2, vocab_size=3, n_positions=8,
                          resid_pdrop=0.5, attn_pdrop=0.5, embd_pdrop=0.5)
    x = _randn(2, 8, 16)
    assert not torch.allclose(decoder(inputs_embeds=x), decoder(inputs_embeds=x))
    decoder.eval()
    assert torch.equal(decoder(inputs_embeds=x), decoder(inputs_embeds=x))


def test_decoder_init_follows_gpt2():
    decoder = GPT2Decoder(n_embd=256, n_layer=8, n_head=4, vocab_size=300, n_positions=64)
    assert abs(decoder.wte.weight.std().item() - 0.02) < 0.002
    assert abs(decoder.h[0].attn.c_attn.weight.std().item() - 0.02) < 0.002
    assert abs(decoder.h[0].mlp.c_proj.weight.std().item() - 0.02 / 4) < 0.001  # sqrt(2 * 8)
    assert decoder.h[0].attn.c_attn.bias.abs().max() == 0


@pytest.mark.parametrize("kwargs,match", [
    ({"n_embd": 10, "n_head": 3}, "n_embd must be divisible by n_head, got n_embd=10"),
    ({"activation": "nope"}, r"activation must be one of \[.*'relu'.*\], got 'nope'"),
])
def test_decoder_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPT2Decoder(**{"n_embd": 16, "n_head": 2, **kwargs})


def test_decoder_bad_inputs():
    decoder = GPT2Decoder(n_embd=16, n_layer=1, n_head=2, vocab_size=3, n_positions=8)
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds must be "
                                         "given, got neither"):
        decoder()
    with pytest.raises(ValueError, match="got both"):
        decoder(input_ids=torch.zeros(1, 2, dtype=torch.long), inputs_embeds=torch.zeros(1, 2, 16))
    with pytest.raises(ContextLengthError, match="a sequence of 9 tokens must fit in "
                                                 r"n_positions=8, got embeddings of shape \(1, 9, 16\)"):
        decoder(inputs_embeds=torch.zeros(1, 9, 16))
    with pytest.raises(InvalidValueError, match=r"must have shape \(batch, steps, n_embd=16\), "
                                                r"got shape \(1, 4, 12\)"):
        decoder(inputs_embeds=torch.zeros(1, 4, 12))


# ---- DecisionTransformer, DTActor, OnlineDTActor against torchrl ---------------------

@pytest.mark.parametrize("name", ["DecisionTransformer", "DTActor", "OnlineDTActor"])
@pytest.mark.parametrize("batch", [(), (5,), (3, 4)])
def test_same_weights_same_outputs_as_torchrl(name, batch):
    ours, theirs = _pair(name)
    inputs = _inputs(batch)
    out, ref = ours(*inputs), theirs(*inputs)
    for a, b in zip(out if isinstance(out, tuple) else [out], ref if isinstance(ref, tuple) else [ref]):
        assert a.shape == b.shape
        assert_close(a, b)


@pytest.mark.parametrize("name", ["DecisionTransformer", "DTActor", "OnlineDTActor"])
def test_state_dicts_interchange_with_torchrl(name):
    ours, theirs = _pair(name)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in theirs.state_dict().items()}
    theirs.load_state_dict(ours.state_dict())


def test_default_configs_match_torchrl():
    assert dataclasses.asdict(DecisionTransformer.default_config()) == \
        dataclasses.asdict(tm.DecisionTransformer.default_config())
    assert repr(DecisionTransformer.default_config()) == repr(tm.DecisionTransformer.default_config())
    for ours, theirs in [(DTActor, tm.DTActor), (OnlineDTActor, tm.OnlineDTActor)]:
        assert dataclasses.asdict(ours.default_config()) == dataclasses.asdict(theirs.default_config())
    config = DecisionTransformer.DTConfig(n_embd=128)
    assert repr(config) == repr(tm.DecisionTransformer.DTConfig(n_embd=128))


def test_default_model_has_torchrl_parameter_count():
    ours = DecisionTransformer(4, 2)
    theirs = tm.DecisionTransformer(4, 2)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())


def test_config_forms_and_torchrl_config():
    as_dict = DecisionTransformer(3, 2, CONFIG)
    as_dataclass = DecisionTransformer(3, 2, DecisionTransformer.DTConfig(**CONFIG))
    from_torchrl = DecisionTransformer(3, 2, tm.DecisionTransformer.DTConfig(**CONFIG))
    assert as_dict.hidden_size == as_dataclass.hidden_size == from_torchrl.hidden_size == 16
    assert len(as_dict.transformer.h) == 2 and as_dict.transformer.n_positions == 30


def test_online_dt_actor_std_is_bounded():
    ours, _ = _pair("OnlineDTActor")
    _, std = ours(*(10 * x for x in _inputs((8,))))
    assert std.min() >= torch.tensor(-5.0).exp() - 1e-6
    assert std.max() <= torch.tensor(2.0).exp() + 1e-6


def test_heads_are_orthogonal_with_zero_bias():
    actor = DTActor(3, 2, transformer_config=CONFIG)
    weight = actor.action_layer.weight
    assert_close(weight @ weight.T, torch.eye(2))
    assert actor.action_layer.bias.abs().max() == 0


def test_device_argument():
    model = DTActor(3, 2, transformer_config=CONFIG, device="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}


@pytest.mark.parametrize("inputs,error,match", [
    (((2, 11, 3), (2, 11, 2), (2, 11, 1)), ContextLengthError,
     r"DecisionTransformer: 11 steps make 33 tokens .* more than n_positions=30; got "
     r"observation of shape \(2, 11, 3\)"),
    (((2, 5, 4), (2, 5, 2), (2, 5, 1)), InvalidValueError,
     r"observation must have shape \(\*batch, steps, 3\), got shape \(2, 5, 4\)"),
    (((2, 5, 3), (2, 5, 3), (2, 5, 1)), InvalidValueError,
     r"action must have shape \(\*batch, steps, 2\), got shape \(2, 5, 3\)"),
    (((2, 5, 3), (2, 4, 2), (2, 5, 1)), InvalidValueError,
     r"must share \(\*batch, steps\), got shapes \(2, 5, 3\), \(2, 4, 2\) and \(2, 5, 1\)"),
])
def test_bad_inputs_name_the_shapes_and_keep_torchrls_exception_type(inputs, error, match):
    ours, theirs = _pair("DecisionTransformer")
    tensors = [torch.zeros(shape) for shape in inputs]
    with pytest.raises(error, match=match):
        ours(*tensors)
    # torchrl: IndexError deep in the position embedding, RuntimeError from matmul or stack
    assert isinstance(raised(lambda: ours(*tensors)), type(raised(lambda: theirs(*tensors))))


def test_return_to_go_must_have_one_feature():
    ours, _ = _pair("DecisionTransformer")
    with pytest.raises(InvalidValueError, match=r"return_to_go must have shape \(\*batch, steps, "
                                                r"1\), got shape \(2, 5, 2\)"):
        ours(torch.zeros(2, 5, 3), torch.zeros(2, 5, 2), torch.zeros(2, 5, 2))


@pytest.mark.parametrize("config,error,match", [
    ({"n_embd": 4}, KeyError, r"config must have the fields .* missing \['n_layer'"),
    (5, TypeError, "config must be a DTConfig or a dict .* got int"),
    (dict(CONFIG, n_head=3), ValueError, "n_embd must be divisible by n_head"),
])
def test_bad_configs_raise_what_torchrl_raises(config, error, match):
    with pytest.raises(error, match=match):
        DecisionTransformer(3, 2, config)
    assert isinstance(raised(lambda: tm.DecisionTransformer(3, 2, config)), error)


def test_unknown_config_field_is_rejected():
    with pytest.raises(ValueError, match=r"config must have only the fields .* got unknown "
                                         r"\['n_embed'\]"):
        DecisionTransformer(3, 2, dict(CONFIG, n_embed=64))


@pytest.mark.torchrl_bug
def test_torchrl_silently_ignores_an_unknown_config_field():
    model = tm.DecisionTransformer(3, 2, dict(CONFIG, n_embed=64))  # a typo for n_embd
    assert model.hidden_size == 16


def test_unknown_activation_is_a_value_error():
    with pytest.raises(ValueError, match="activation must be one of"):
        DTActor(3, 2, transformer_config=dict(CONFIG, activation="nope"))


# ---- the inference wrapper -------------------------------------------------------------

def _torchrl_mask(observation, action, return_to_go, inference_context):
    wrapper = tm.DecisionTransformerInferenceWrapper(
        TensorDictModule(lambda o, a, r: a, in_keys=DT_KEYS, out_keys=["action"]),
        inference_context=inference_context)
    td = TensorDict(observation=observation, action=action, return_to_go=return_to_go)
    td = wrapper.mask_context(td)
    return td["observation"], td["action"], td["return_to_go"]


@pytest.mark.parametrize("inference_context", [2, 3, 5, 8, 12])
def test_masked_context_matches_torchrl(inference_context):
    inputs = _inputs((2,), steps=8)
    for ours, theirs in zip(masked_context(*inputs, inference_context),
                            _torchrl_mask(*inputs, inference_context)):
        assert torch.equal(ours, theirs)


def test_masked_context_keeps_the_last_steps_and_never_modifies_its_inputs():
    steps = torch.arange(1.0, 7.0).view(6, 1)
    inputs = (steps.clone(), 10 * steps, 100 * steps)
    observation, action, return_to_go = masked_context(*inputs, 3)
    assert observation.flatten().tolist() == [0, 0, 0, 4, 5, 6]
    assert return_to_go.flatten().tolist() == [0, 0, 0, 400, 500, 600]
    assert action.flatten().tolist() == [0, 0, 0, 50, 60, 0]  # a_t sits at s_t, the last is 0
    assert torch.equal(inputs[0], steps)


def test_inference_context_one_masks_every_past_action():
    observation, action, _ = masked_context(*_inputs((2,), steps=6), 1)
    assert action.abs().max() == 0
    assert observation[:, :-1].abs().max() == 0


@pytest.mark.torchrl_bug
def test_torchrl_inference_context_one_keeps_every_past_action():
    inputs = _inputs((2,), steps=6)
    observation, action, _ = _torchrl_mask(*inputs, 1)
    assert observation[:, :-1].abs().max() == 0  # one observation kept ...
    assert torch.equal(action[:, :-1], inputs[1][:, 1:])  # ... but all five past actions


def _wrapped_pair(inference_context=5, out_key="action"):
    ours_model, theirs_model = _pair("DTActor")
    ours = DecisionTransformerInferenceWrapper(
        SafeModule(ours_model, in_keys=DT_KEYS, out_keys=[out_key]),
        inference_context=inference_context)
    theirs = tm.DecisionTransformerInferenceWrapper(
        TensorDictModule(theirs_model, in_keys=DT_KEYS, out_keys=[out_key]),
        inference_context=inference_context)
    return ours, theirs


@pytest.mark.parametrize("inference_context", [2, 5, 9, 20])
@pytest.mark.parametrize("batch", [(), (3,)])
def test_wrapper_matches_torchrl(inference_context, batch):
    ours, theirs = _wrapped_pair(inference_context)
    observation, action, return_to_go = _inputs(batch, steps=9)
    td = TensorDict(observation=observation, action=action, return_to_go=return_to_go,
                    batch_size=batch)
    out, ref = ours(td.clone()), theirs(td.clone())
    assert out.batch_size == ref.batch_size
    assert sorted(out.keys()) == sorted(ref.keys())
    for key in ref.keys():
        assert_close(out[key], ref[key])
    assert out["action"].shape == (*batch, 2) and out["return_to_go"].shape == (*batch, 1)
    assert ours.in_keys == theirs.in_keys and ours.out_keys == theirs.out_keys


def test_wrapper_leaves_the_input_alone_and_keeps_the_full_observation():
    ours, _ = _wrapped_pair(2)
    observation, action, return_to_go = _inputs((1,), steps=9)
    td = TensorDict(observation=observation, action=action, return_to_go=return_to_go,
                    batch_size=[1])
    before = td.clone()
    out = ours(td)
    assert (td == before).all()
    assert torch.equal(out["observation"], observation)


def test_wrapper_drops_a_time_batch_dim_as_torchrl():
    ours, theirs = _wrapped_pair(4)
    observation, action, return_to_go = _inputs((2,), steps=7)
    td = TensorDict(observation=observation, action=action, return_to_go=return_to_go,
                    batch_size=[2, 7])
    out, ref = ours(td.clone()), theirs(td.clone())
    assert out.batch_size == ref.batch_size == torch.Size([2])
    assert_close(out["action"], ref["action"])


def test_wrapper_keyword_call_matches_torchrl():
    ours, theirs = _wrapped_pair(3)
    observation, action, return_to_go = _inputs((1,), steps=5)
    kwargs = dict(observation=observation, action=action, return_to_go=return_to_go)
    for a, b in zip(ours(**kwargs), theirs(**kwargs)):
        assert_close(a, b)


def test_wrapper_set_tensor_keys():
    model, _ = _pair("DTActor")
    policy = SafeModule(model, in_keys=["obs", "act", "rtg"], out_keys=["act_seq"])
    with pytest.raises(ValueError, match=r"out_action must be one of the policy's out_keys "
                                         r"\['act_seq'\], got 'action'"):
        DecisionTransformerInferenceWrapper(policy)  # torchrl: at the first call
    renamed = SafeModule(model, in_keys=["obs", "act", "rtg"], out_keys=["action"])
    wrapper = DecisionTransformerInferenceWrapper(renamed, inference_context=3)
    wrapper.set_tensor_keys(observation="obs", action="act", return_to_go="rtg")
    observation, action, return_to_go = _inputs((1,), steps=5)
    out = wrapper(TensorDict(obs=observation, act=action, rtg=return_to_go, batch_size=[1]))
    assert out["action"].shape == (1, 2) and out["rtg"].shape == (1, 1)
    assert wrapper.in_keys == ["obs", "act", "rtg"]
    with pytest.raises(TypeError, match=r"set_tensor_keys accepts .* got unknown \['reward'\]"):
        wrapper.set_tensor_keys(reward="r")


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_wrapper_rejects_a_bad_inference_context(value):
    ours, _ = _pair("DTActor")
    with pytest.raises(ValueError, match=f"inference_context must be an int >= 1, got {value!r}"):
        DecisionTransformerInferenceWrapper(SafeModule(ours, DT_KEYS, ["action"]),
                                            inference_context=value)


def test_wrapper_errors():
    with pytest.raises(TypeError, match="policy must be a TensorDict module, got DTActor"):
        DecisionTransformerInferenceWrapper(DTActor(3, 2, transformer_config=CONFIG))
    ours, _ = _wrapped_pair()
    with pytest.raises(KeyError, match="expected key 'return_to_go' in the input tensordict"):
        ours(TensorDict(observation=torch.zeros(1, 4, 3), action=torch.zeros(1, 4, 2),
                        batch_size=[1]))
    with pytest.raises(ValueError, match=r"must share \(\*batch, steps\), got shapes \(1, 4, 3\), "
                                         r"\(1, 3, 2\) and \(1, 4, 1\)"):
        ours(TensorDict(observation=torch.zeros(1, 4, 3), action=torch.zeros(1, 3, 2),
                        return_to_go=torch.zeros(1, 4, 1), batch_size=[1]))


def test_wrapper_spec():
    from rlmods import Bounded, Composite
    ours, _ = _pair("DTActor")
    wrapper = DecisionTransformerInferenceWrapper(SafeModule(ours, DT_KEYS, ["action"]),
                                                  spec=Bounded(-1.0, 1.0, shape=(2,)))
    assert isinstance(wrapper._spec, Composite) and wrapper._spec["action"].shape == (2,)
    default = DecisionTransformerInferenceWrapper(SafeModule(ours, DT_KEYS, ["action"]))
    assert "action" in default._spec.keys()


# ---- LMHeadActorValueOperator ------------------------------------------------------------

def _tokens(batch=3, steps=5):
    ids = torch.randint(0, 11, (batch, steps), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(batch, steps, dtype=torch.long)
    mask[0, :2] = 0
    return TensorDict(input_ids=ids, attention_mask=mask, batch_size=[batch])


OPERATOR_KEYS = ["x", "logits", "action", "action_log_prob", "state_value"]


def test_lm_operator_matches_torchrl_on_gpt2():
    base = _hf_lm(return_dict=False)  # torchrl needs a tuple output (see the torchrl_bug test)
    theirs = tm.LMHeadActorValueOperator(base)
    ours = LMHeadActorValueOperator(base)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    with set_interaction_type(InteractionType.DETERMINISTIC):
        out, ref = ours(_tokens()), theirs(_tokens())
        for key in OPERATOR_KEYS:
            assert_close(out[key], ref[key])
        policy, ref_policy = ours.get_policy_operator(), theirs.get_policy_operator()
        assert_close(policy(_tokens())["action"], ref_policy(_tokens())["action"])
        value, ref_value = ours.get_value_operator(), theirs.get_value_operator()
        assert_close(value(_tokens())["state_value"], ref_value(_tokens())["state_value"])


def test_lm_operator_is_chapter_9s_actor_value_operator():
    ours = LMHeadActorValueOperator(TinyLM())
    assert isinstance(ours, ActorValueOperator)
    td = ours.get_value_operator()(_tokens())
    assert "state_value" in td.keys() and "action" not in td.keys()
    td = ours.get_policy_operator()(_tokens())
    assert "action" in td.keys() and "state_value" not in td.keys()
    assert {"logits", "action", "action_log_prob"} <= set(ours.get_policy_head().out_keys)
    assert ours.get_value_head().out_keys == ["state_value"]


def test_lm_operator_on_a_tiny_rlmods_lm():
    model = TinyLM()
    ours = LMHeadActorValueOperator(model).eval()
    with set_interaction_type(InteractionType.DETERMINISTIC):
        td = ours(_tokens())
    hidden = model.transformer(input_ids=_tokens()["input_ids"],
                               attention_mask=_tokens()["attention_mask"])[:, -1]
    assert_close(td["x"], hidden)
    assert_close(td["logits"], model.lm_head(hidden))
    assert torch.equal(td["action"], td["logits"].argmax(-1))
    assert_close(td["action_log_prob"], td["logits"].log_softmax(-1).gather(
        -1, td["action"][:, None]).squeeze(-1))
    assert td["state_value"].shape == (3, 1)


def test_lm_operator_works_on_a_default_gpt2_lm_head_model():
    base = _hf_lm()  # return_dict=True: the body returns a ModelOutput
    td = LMHeadActorValueOperator(base)(_tokens())
    assert td["logits"].shape == (3, 11) and td["state_value"].shape == (3, 1)


@pytest.mark.torchrl_bug
def test_torchrl_lm_operator_fails_on_a_default_gpt2_lm_head_model():
    error = raised(lambda: tm.LMHeadActorValueOperator(_hf_lm())(_tokens()))
    assert isinstance(error, RuntimeError) and "more out_keys than tensors" in str(error)


def test_lm_operator_critic_follows_the_model_dtype():
    base = _hf_lm().double()
    td = LMHeadActorValueOperator(base)(_tokens())
    assert td["state_value"].dtype == torch.float64


@pytest.mark.torchrl_bug
def test_torchrl_lm_operator_critic_stays_float32():
    base = _hf_lm(return_dict=False).double()
    assert tm.LMHeadActorValueOperator(base).get_value_head().module.weight.dtype == torch.float32
    assert isinstance(raised(lambda: tm.LMHeadActorValueOperator(base)(_tokens())), RuntimeError)


def test_lm_operator_bad_base_model():
    with pytest.raises(TypeError, match="base_model must have a .transformer body and an .lm_head "
                                        "linear layer, got Linear without .transformer"):
        LMHeadActorValueOperator(nn.Linear(3, 3))
    model = TinyLM()
    model.lm_head = nn.Sequential(nn.Linear(16, 11))
    with pytest.raises(TypeError, match="lm_head must be a linear layer with in_features, "
                                        "got Sequential"):
        LMHeadActorValueOperator(model)


def test_last_token_hidden_reads_tensors_tuples_and_model_outputs():
    base = _hf_lm()
    td = _tokens()
    expected = base.transformer(input_ids=td["input_ids"],
                                attention_mask=td["attention_mask"]).last_hidden_state[:, -1]
    assert_close(LastTokenHidden(base.transformer)(td.clone())["x"], expected)
    with pytest.raises(KeyError, match="expected key 'attention_mask'"):
        LastTokenHidden(base.transformer)(td.exclude("attention_mask"))


def test_lm_operator_fallback_paths_agree():
    operator = LMHeadActorValueOperator(TinyLM()).eval()  # no dropout
    tokens = _tokens()
    with set_interaction_type(InteractionType.DETERMINISTIC):
        td = operator(tokens.clone())
        out = operator(tokens.clone(), tensordict_out=TensorDict(batch_size=[3]))
        tensors = operator(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    for key in OPERATOR_KEYS:
        assert_close(out[key], td[key])
    assert len(tensors) == len(operator.out_keys)
    for key, value in zip(operator.out_keys, tensors):
        assert_close(value, td[key])
