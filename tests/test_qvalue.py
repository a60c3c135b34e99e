"""rlmods.qvalue against torchrl 0.14 (the oracle), plus what rlmods adds."""

import pytest
import torch
import torchrl.data as tdata
import torchrl.modules as tm
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torch.testing import assert_close

from rlmods import (Binary, Bounded, Categorical, Composite, DuelingCnnDQNet, InvalidValueError,
                    MultiCategorical, MultiOneHot, OneHot, QValueActor, QValueHook, QValueModule)
from rlmods.qvalue import chosen_action_value, greedy_action
from rlmods import Unbounded
from oracle_helpers import raised as _raised
from oracle_helpers import train_seeds_module

KEYS = ("action", "action_value", "chosen_action_value")


def _values(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- the tensor functions -------------------------------------------------------------

def test_greedy_action_is_argmax_for_every_space():
    values = _values(7, 5)
    idx = values.argmax(-1)
    assert torch.equal(greedy_action(values, "categorical"), idx)
    assert torch.equal(greedy_action(values, "one_hot"), torch.eye(5, dtype=torch.long)[idx])
    assert torch.equal(greedy_action(values, "binary"), (values > 0).long())
    blocks = values.split([2, 3], -1)
    expected = torch.stack([b.argmax(-1) for b in blocks], -1)
    assert torch.equal(greedy_action(values, "mult_categorical", [2, 3]), expected)
    one_hot = greedy_action(values, "mult_one_hot", [2, 3])
    assert torch.equal(one_hot[:, :2].argmax(-1), expected[:, 0])
    assert torch.equal(one_hot.sum(-1), torch.full((7,), 2))


def test_binary_greedy_action_maximises_the_sum_over_all_bit_vectors():
    values = _values(4, 3)
    bits = torch.tensor([[(i >> j) & 1 for j in range(3)] for i in range(8)])  # (8, 3)
    best = (values @ bits.T.float()).max(-1).values  # (4,)
    action = greedy_action(values, "binary")
    assert_close(chosen_action_value(values, action, "binary").squeeze(-1), best)


def test_chosen_action_value_of_mult_categorical_sums_the_blocks():
    values = _values(6, 5)
    action = greedy_action(values, "mult_categorical", [2, 3])
    one_hot = greedy_action(values, "mult_one_hot", [2, 3])
    assert_close(chosen_action_value(values, action, "mult_categorical", [2, 3]),
                 chosen_action_value(values, one_hot, "mult_one_hot", [2, 3]))


# ---- QValueModule against torchrl -----------------------------------------------------

@pytest.mark.parametrize("space,ours,theirs", [
    ("one_hot", OneHot(4), tdata.OneHot(4)),
    ("categorical", Categorical(4), tdata.Categorical(4)),
])
@pytest.mark.parametrize("masked", [False, True])
def test_qvalue_module_matches_torchrl(space, ours, theirs, masked):
    values = _values(8, 4)
    mask = torch.rand(8, 4, generator=torch.Generator().manual_seed(1)) > 0.4
    mask[:, 2] = True
    mask_key = "mask" if masked else None
    mine = QValueModule(spec=ours, action_mask_key=mask_key)
    ref = tm.QValueModule(spec=theirs, action_mask_key=mask_key)
    data = {"action_value": values, "mask": mask}
    out, expected = mine(TensorDict(data, [8])), ref(TensorDict(data, [8]))
    for key in KEYS:
        assert_close(out[key], expected[key])
    assert mine.in_keys == ref.in_keys and mine.out_keys == ref.out_keys


def test_qvalue_module_mult_one_hot_matches_torchrl():
    values = _values(8, 5)
    mine = QValueModule("mult_one_hot", var_nums=[2, 3])
    ref = tm.QValueModule("mult_one_hot", var_nums=[2, 3])
    for key in KEYS:
        assert_close(mine(TensorDict(action_value=values))[key], ref(TensorDict(action_value=values))[key])


def test_qvalue_module_tensor_and_keyword_calls_match_torchrl():
    value = torch.tensor([0.0, 0.0, 0.0, 1.0])
    mine = QValueModule("categorical", action_value_key="my_action_value")
    ref = tm.QValueModule("categorical", action_value_key="my_action_value")
    for got, expected in zip(mine(value), ref(value)):
        assert_close(got, expected)
    for got, expected in zip(mine(my_action_value=value), ref(my_action_value=value)):
        assert_close(got, expected)


def test_qvalue_module_strict_shape_auto_matches_torchrl():
    values = _values(5, 3)
    mine = QValueModule(spec=Categorical(3, shape=(1,)), strict_shape="auto")
    ref = tm.QValueModule(spec=tdata.Categorical(3, shape=(1,)), strict_shape="auto")
    out, expected = mine(TensorDict(action_value=values)), ref(TensorDict(action_value=values))
    assert out["action"].shape == (5, 1)
    assert_close(out["action"], expected["action"])
    assert QValueModule(spec=Categorical(3, shape=(1,)), strict_shape=False)(values)[0].shape == (5,)


# ---- masks ------------------------------------------------------------------------------

@pytest.mark.parametrize("space,n", [("one_hot", 5), ("categorical", 5), ("binary", 5),
                                     ("mult_one_hot", 5), ("mult_categorical", 5)])
def test_masked_actions_are_never_chosen(space, n):
    var_nums = [2, 3] if space.startswith("mult") else None
    module = QValueModule(space, var_nums=var_nums, action_mask_key="mask")
    values = _values(200, n)
    mask = torch.rand(200, n, generator=torch.Generator().manual_seed(2)) > 0.5
    mask[:, [0, 2]] = True  # each block keeps an allowed action
    action = module(TensorDict(action_value=values, mask=mask, batch_size=[200]))["action"]
    if space == "categorical":
        assert mask.gather(-1, action[:, None]).all()
    elif space == "mult_categorical":
        assert mask[:, :2].gather(-1, action[:, :1]).all() and mask[:, 2:].gather(-1, action[:, 1:]).all()
    else:
        assert not (action.bool() & ~mask).any()


# ---- QValueActor and QValueHook against torchrl ------------------------------------------

@pytest.mark.parametrize("ours,theirs", [(OneHot(4), tdata.OneHot(4)), (Categorical(4), tdata.Categorical(4))])
def test_qvalue_actor_matches_torchrl_with_the_same_weights(ours, theirs):
    ref = tm.QValueActor(nn.Linear(3, 4), spec=theirs)
    mine = QValueActor(nn.Linear(3, 4), spec=ours)
    mine.load_state_dict(ref.state_dict())  # checkpoint compatibility
    obs = _values(5, 3)
    out = mine(TensorDict(observation=obs, batch_size=[5]))
    expected = ref(TensorDict(observation=obs, batch_size=[5]))
    assert sorted(out.keys()) == sorted(expected.keys())
    for key in KEYS:
        assert_close(out[key], expected[key])
    assert mine.in_keys == ref.in_keys and mine.out_keys == ref.out_keys


def test_qvalue_actor_with_tensordict_module_and_custom_keys_matches_torchrl():
    module = TensorDictModule(nn.Linear(3, 4), ["obs"], [("agent", "q")])
    kwargs = dict(action_value_key=("agent", "q"), action_key=("agent", "action"),
                  chosen_action_value_key=("agent", "chosen"))
    mine = QValueActor(module, spec=OneHot(4), **kwargs)
    ref = tm.QValueActor(module, spec=tdata.OneHot(4), **kwargs)
    obs = _values(5, 3)
    out, expected = mine(TensorDict(obs=obs, batch_size=[5])), ref(TensorDict(obs=obs, batch_size=[5]))
    for key in kwargs.values():
        assert_close(out[key], expected[key])


def test_qvalue_hook_matches_torchrl():
    net = nn.Linear(3, 4)
    obs = _values(5, 3)
    expected = net(obs)
    handle = net.register_forward_hook(tm.QValueHook("one_hot"))
    ref = net(obs)
    handle.remove()
    _ = net.register_forward_hook(QValueHook("one_hot"))
    for got, want in zip(net(obs), ref):
        assert_close(got, want)
    assert_close(net(obs)[1], expected)


def test_dueling_cnn_dqnet_loads_torchrl_weights_and_matches():
    torch.manual_seed(0)
    ref = tm.DuelingCnnDQNet(out_features=6)
    x = _values(2, 3, 64, 64)
    expected = ref(x)  # materialises the lazy layers
    mine = DuelingCnnDQNet(out_features=6)
    _ = mine(x)
    assert sorted(mine.state_dict()) == sorted(ref.state_dict())
    mine.load_state_dict(ref.state_dict())
    assert_close(mine(x), expected)
    value = ref.value(ref.features(x))
    assert_close(mine(x).mean(-1, keepdim=True), value)  # mean advantage is subtracted


# ---- where rlmods goes beyond torchrl -----------------------------------------------------

@pytest.mark.torchrl_bug
def test_torchrl_binary_and_mult_categorical_fail():
    values = _values(5, 3)
    with pytest.raises(TypeError):  # torchrl's _binary is a stub with a wrong signature
        tm.QValueModule(spec=tdata.Binary(3))(TensorDict(action_value=values))
    with pytest.raises(ValueError, match="action_space must be one of"):
        tm.QValueModule(spec=tdata.MultiCategorical([1, 2]))


def test_binary_and_mult_categorical_better_than_torchrl():
    values = _values(5, 3)
    out = QValueModule(spec=Binary(3))(TensorDict(action_value=values))
    assert torch.equal(out["action"], (values > 0).long())
    out = QValueModule(spec=MultiCategorical([1, 2]))(TensorDict(action_value=values))
    assert out["action"].shape == (5, 2) and out["chosen_action_value"].shape == (5, 1)


@pytest.mark.torchrl_bug
def test_torchrl_rejects_a_custom_action_key_with_a_spec():
    with pytest.raises(KeyError):
        tm.QValueActor(nn.Linear(3, 4), spec=tdata.OneHot(4), action_key="my_action")


def test_custom_action_key_with_a_spec_better_than_torchrl():
    actor = QValueActor(nn.Linear(3, 4), spec=OneHot(4), action_key="my_action")
    out = actor(TensorDict(observation=_values(5, 3), batch_size=[5]))
    assert out["my_action"].shape == (5, 4) and actor.action_space == "one_hot"


@pytest.mark.torchrl_bug
def test_torchrl_needs_var_nums_again_with_a_multi_one_hot_spec():
    with pytest.raises(ValueError, match="var_nums"):
        tm.QValueModule(spec=tdata.MultiOneHot([2, 3]))(TensorDict(action_value=_values(5, 5)))


def test_var_nums_from_the_spec_better_than_torchrl():
    values = _values(5, 5)
    out = QValueModule(spec=MultiOneHot([2, 3]))(TensorDict(action_value=values))
    expected = tm.QValueModule("mult_one_hot", var_nums=[2, 3])(TensorDict(action_value=values))
    assert_close(out["action"], expected["action"])


@pytest.mark.torchrl_bug
def test_torchrl_ties_give_two_actions_at_once():
    assert tm.QValueModule("one_hot")(torch.tensor([[1.0, 2.0, 2.0]]))[0].sum() == 2


def test_ties_give_a_valid_one_hot_better_than_torchrl():
    assert QValueModule("one_hot")(torch.tensor([[1.0, 2.0, 2.0]]))[0].tolist() == [[0, 1, 0]]


# ---- error messages -------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,match", [
    ({}, ValueError, "action_space or spec must be given"),
    ({"action_space": "gaussian"}, ValueError, "action_space must be one of"),
    ({"action_space": OneHot(3)}, TypeError, "action_space must be a string"),
    ({"action_space": "categorical", "spec": OneHot(3)}, ValueError, "action_space and spec must agree"),
    ({"spec": Bounded(-1.0, 1.0, (2,))}, ValueError, "spec must be a discrete action spec"),
    ({"spec": Composite(observation=OneHot(3))}, KeyError, "spec must hold the action key"),
    ({"action_space": "mult_one_hot"}, ValueError, "var_nums must be given"),
    ({"spec": MultiOneHot([2, 3]), "var_nums": [3, 2]}, ValueError, r"var_nums must match the spec's nvec \[2, 3\]"),
    ({"action_space": "one_hot", "out_keys": ["action", "q", "chosen"]}, ValueError,
     "out_keys must contain the action_value_key 'action_value'"),
    ({"action_space": "one_hot", "strict_shape": "yes"}, ValueError, "strict_shape must be"),
])
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        QValueModule(**kwargs)


def test_forward_errors():
    module = QValueModule(spec=OneHot(3), action_mask_key="mask")
    with pytest.raises(KeyError, match="QValueModule: expected key 'action_value'"):
        module(TensorDict(observation=torch.zeros(2, 3), batch_size=[2]))
    with pytest.raises(KeyError, match="QValueModule: expected key 'mask'"):
        module(TensorDict(action_value=torch.zeros(2, 3), batch_size=[2]))
    with pytest.raises(ValueError, match=r"QValueModule: 'action_value' must have 3 entries in its "
                                         r"last dim, got shape \(2, 4\)\."):
        module(TensorDict(action_value=torch.zeros(2, 4), mask=torch.ones(2, 4, dtype=torch.bool)))
    strict = QValueModule(spec=Categorical(3, shape=(1,)))
    with pytest.raises(ValueError, match=r"the action must have shape \(5, 1\).*strict_shape='auto'"):
        strict(TensorDict(action_value=torch.zeros(5, 3)))


def test_actor_error_when_the_module_does_not_write_the_action_value():
    module = TensorDictModule(nn.Linear(3, 4), ["observation"], ["q"])
    with pytest.raises(KeyError, match="QValueActor: the module's out_keys must contain the "
                                       "action_value_key 'action_value'"):
        QValueActor(module, spec=OneHot(4))


def test_binary_sets_only_bits_with_a_positive_gain():
    values = torch.tensor([[0.0, -0.0, 1e-7, -1e-7]])
    assert greedy_action(values, "binary").tolist() == [[0, 0, 1, 0]]


# ---- exception types: a torchrl user's `except` keeps working ------------------------------

ERROR_CASES = {
    "out_keys without the action_value_key": (
        lambda: QValueModule("one_hot", out_keys=["action", "q", "chosen"]),
        lambda: tm.QValueModule("one_hot", out_keys=["action", "q", "chosen"])),
    "action shape differs from the spec (strict_shape=True)": (
        lambda: QValueModule(spec=Categorical(3, shape=(1,)))(torch.zeros(5, 3)),
        lambda: tm.QValueModule(spec=tdata.Categorical(3, shape=(1,)))(torch.zeros(5, 3))),
    "values wider than the one-hot spec": (
        lambda: QValueModule(spec=OneHot(3))(torch.zeros(5, 4)),
        lambda: tm.QValueModule(spec=tdata.OneHot(3))(torch.zeros(5, 4))),
    "values wider than the one-hot spec (strict_shape='auto')": (
        lambda: QValueModule(spec=OneHot(3), strict_shape="auto")(torch.zeros(5, 4)),
        lambda: tm.QValueModule(spec=tdata.OneHot(3), strict_shape="auto")(torch.zeros(5, 4))),
    "a spec as action_space (module)": (
        lambda: QValueModule(OneHot(3)), lambda: tm.QValueModule(tdata.OneHot(3))),
    "a spec as action_space (actor)": (
        lambda: QValueActor(nn.Linear(3, 4), action_space=OneHot(4)),
        lambda: tm.QValueActor(nn.Linear(3, 4), action_space=tdata.OneHot(4))),
    "a spec as action_space (hook)": (
        lambda: QValueHook(OneHot(4)), lambda: tm.QValueHook(tdata.OneHot(4))),
    "action_space and spec disagree": (
        lambda: QValueModule("categorical", spec=OneHot(3)),
        lambda: tm.QValueModule("categorical", spec=tdata.OneHot(3))),
    "neither action_space nor spec": (lambda: QValueModule(), lambda: tm.QValueModule()),
    "missing action_value": (
        lambda: QValueModule("one_hot")(TensorDict(q=torch.zeros(2, 3))),
        lambda: tm.QValueModule("one_hot")(TensorDict(q=torch.zeros(2, 3)))),
    "missing action mask": (
        lambda: QValueModule("one_hot", action_mask_key="m")(TensorDict(action_value=torch.zeros(3))),
        lambda: tm.QValueModule("one_hot", action_mask_key="m")(
            TensorDict(action_value=torch.zeros(3)))),
    "the module does not write the action value": (
        lambda: QValueActor(TensorDictModule(nn.Linear(3, 4), ["observation"], ["q"]),
                            spec=OneHot(4)),
        lambda: tm.QValueActor(TensorDictModule(nn.Linear(3, 4), ["observation"], ["q"]),
                               spec=tdata.OneHot(4))),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_error_types_match_torchrl(case):
    ours, theirs = ERROR_CASES[case]
    expected = _raised(theirs)
    assert isinstance(_raised(ours), type(expected)), (type(_raised(ours)), type(expected))


def test_invalid_value_error_is_also_a_value_error():
    error = _raised(lambda: QValueModule("one_hot", out_keys=["action", "q", "chosen"]))
    assert isinstance(error, ValueError) and isinstance(error, RuntimeError)


# ---- values whose last dim differs from the spec (issue: strict_shape="auto") -------------

@pytest.mark.torchrl_bug
def test_torchrl_accepts_values_wider_than_a_categorical_spec():
    # torchrl reads 5 values for a 3-action spec and returns action 4, outside the spec.
    values = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]])
    ref = tm.QValueModule(spec=tdata.Categorical(3), strict_shape="auto")
    action = ref(TensorDict(action_value=values, batch_size=[1]))["action"]
    assert action.tolist() == [4] and not tdata.Categorical(3).is_in(action)


@pytest.mark.parametrize("strict_shape", [True, "auto", False])
def test_values_wider_than_the_spec_are_rejected_better_than_torchrl(strict_shape):
    module = QValueModule(spec=Categorical(3), strict_shape=strict_shape)
    with pytest.raises(InvalidValueError, match=r"'action_value' must have 3 entries in its "
                                                 r"last dim, got shape \(1, 5\)\."):
        module(TensorDict(action_value=torch.zeros(1, 5), batch_size=[1]))


# ---- the stored training evidence comes from the chapters' own training cells --------------

def test_stored_seed_results_match_the_notebooks_training_cells():
    train_seeds = train_seeds_module()
    assert train_seeds.check() == []


def test_stored_seed_results_check_detects_other_hyperparameters(tmp_path):
    import json

    train_seeds = train_seeds_module()
    stored = json.loads(train_seeds.DEFAULT_OUT.read_text())
    stored["algorithms"]["dqn"]["hparams"]["lr"] *= 2
    stored["algorithms"]["c51"]["code_hash"] = "0" * 16
    changed = tmp_path / "seeds.json"
    changed.write_text(json.dumps(stored))
    problems = train_seeds.check(changed)
    assert len(problems) == 2 and "dqn: stored hparams" in problems[0]
    assert "c51: stored code_hash" in problems[1]


# ================================================================================================
# Tests that kill mutants mutation testing found surviving (tools/mutation.sh).
# ================================================================================================

def _mut_values(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- two batch dims: every reduction is over the last dim --------------------------------

def test_greedy_action_with_two_batch_dims():
    values = _mut_values(2, 3, 5)
    idx = values.argmax(-1)
    assert torch.equal(greedy_action(values, "categorical"), idx)
    assert torch.equal(greedy_action(values, "one_hot"), torch.eye(5, dtype=torch.long)[idx])
    blocks = values.split([2, 3], -1)
    expected = torch.stack([b.argmax(-1) for b in blocks], -1)  # (2, 3, 2)
    assert torch.equal(greedy_action(values, "mult_categorical", [2, 3]), expected)
    one_hot = greedy_action(values, "mult_one_hot", [2, 3])
    assert one_hot.shape == (2, 3, 5)
    assert torch.equal(one_hot[..., :2], torch.eye(2, dtype=torch.long)[expected[..., 0]])
    assert torch.equal(one_hot[..., 2:], torch.eye(3, dtype=torch.long)[expected[..., 1]])


def test_chosen_action_value_with_two_batch_dims():
    values = _mut_values(2, 3, 5)
    best = values.max(-1, keepdim=True).values  # (2, 3, 1)
    for space in ("categorical", "one_hot"):
        action = greedy_action(values, space)
        assert_close(chosen_action_value(values, action, space), best)
    action = greedy_action(values, "mult_categorical", [2, 3])
    expected = values[..., :2].max(-1, keepdim=True).values + values[..., 2:].max(-1, keepdim=True).values
    assert_close(chosen_action_value(values, action, "mult_categorical", [2, 3]), expected)
    action = greedy_action(values, "mult_one_hot", [2, 3])
    assert_close(chosen_action_value(values, action, "mult_one_hot", [2, 3]), expected)


def test_qvalue_module_with_two_batch_dims_matches_torchrl():
    values = _mut_values(2, 3, 4)
    ours = QValueModule(spec=OneHot(4))(TensorDict({"action_value": values.clone()}, [2, 3]))
    theirs = tm.QValueModule(action_space="one_hot")(
        TensorDict({"action_value": values.clone()}, [2, 3]))
    assert torch.equal(ours["action"].long(), theirs["action"].long())
    assert_close(ours["chosen_action_value"], theirs["chosen_action_value"])


def test_dueling_net_centres_the_advantage_over_actions_with_two_batch_dims():
    torch.manual_seed(0)
    kw = dict(cnn_kwargs={"num_cells": [4], "strides": [1], "kernel_sizes": [3]},
              mlp_kwargs={"num_cells": 8})
    ours = DuelingCnnDQNet(4, **kw)
    x = torch.randn(2, 3, 3, 5, 5)
    ours(x)  # materialise the lazy layers
    theirs = tm.DuelingCnnDQNet(4, **kw)
    theirs(x)
    theirs.load_state_dict(ours.state_dict())
    out = ours(x)
    assert out.shape == (2, 3, 4)
    assert_close(out, theirs(x))
    features = ours.features(x)
    assert_close(out.mean(-1, keepdim=True), ours.value(features))


def test_dueling_net_honours_device():
    net = DuelingCnnDQNet(4, device="meta")
    for name in ("features", "advantage", "value"):
        params = list(getattr(net, name).parameters())
        assert params and all(p.device.type == "meta" for p in params), name


def test_value_width_is_checked_on_the_last_dim_with_two_batch_dims():
    module = QValueModule(spec=OneHot(4))
    td = module(TensorDict({"action_value": _mut_values(2, 3, 4)}, [2, 3]))  # last dim 4: fine
    assert td["action"].shape == (2, 3, 4)
    with pytest.raises(ValueError, match=r"^QValueModule: 'action_value' must have 4 entries in "
                                         r"its last dim, got shape \(2, 4, 3\)\.$"):
        module(TensorDict({"action_value": _mut_values(2, 4, 3)}, [2, 4]))


# ---- nested action keys in a Composite spec ----------------------------------------------

def test_nested_action_leaf_is_found_among_other_nested_leaves():
    spec = Composite({"agents": Composite({"obs": Unbounded(2), "action": OneHot(3)})})
    module = QValueModule(spec=spec)
    assert module.action_space == "one_hot"
    td = module(TensorDict({"action_value": torch.tensor([0.0, 2.0, 1.0])}, []))
    assert td["action"].long().tolist() == [0, 1, 0]


def test_deeply_nested_action_leaf_is_found():
    spec = Composite({"a": Composite({"b": Composite({"action": Categorical(3)})})})
    assert QValueModule(spec=spec).action_space == "categorical"


def test_missing_action_leaf_error_names_owner_and_leaf_keys():
    spec = Composite({"agents": Composite({"obs": Unbounded(2)})})
    with pytest.raises(KeyError, match=r"QValueModule: spec must hold the action key") as info:
        QValueModule(spec=spec)
    assert info.value.args[0] == ("QValueModule: spec must hold the action key 'action' or a "
                                  "leaf named 'action', got keys [\"('agents', 'obs')\"].")


def test_nested_out_key_uses_the_parent_batch_shape():
    # The action lives under ("agents", "action"); the agents' Composite has batch shape (2,).
    spec = Composite({"agents": Composite({"action": OneHot(3, shape=(2, 3))}, shape=(2,))})
    module = QValueModule(spec=spec, out_keys=[("agents", "action"), "action_value",
                                               "chosen_action_value"])
    td = module(TensorDict({"action_value": _mut_values(2, 3)}, []))
    assert td["agents", "action"].shape == (2, 3)


def test_deeply_nested_out_key_uses_the_direct_parent_batch_shape():
    leaf = OneHot(3, shape=(1, 2, 3))
    spec = Composite({"a": Composite({"b": Composite({"action": leaf}, shape=(1, 2))},
                                     shape=(1,))})
    module = QValueModule(spec=spec, action_value_key=("a", "b", "action_value"),
                          out_keys=[("a", "b", "action"), ("a", "b", "action_value"),
                                    ("a", "b", "chosen_action_value")])
    td = TensorDict({"a": {"b": {"action_value": _mut_values(1, 2, 3)}}}, [])
    assert module(td)["a", "b", "action"].shape == (1, 2, 3)


def test_batched_composite_spec_is_kept_and_fixes_the_action_shape():
    spec = Composite({"action": OneHot(3, shape=(2, 3)), "other": Unbounded((2, 1))}, shape=(2,))
    module = QValueModule(spec=spec)
    assert set(module.spec.keys()) >= {"action", "other"}
    assert module.spec.shape == (2,)
    td = module(TensorDict({"action_value": _mut_values(2, 3)}, [2]))
    assert td["action"].shape == (2, 3)


def test_single_spec_is_stored_under_the_action_key():
    leaf = OneHot(3)
    module = QValueModule(spec=leaf)
    assert list(module.spec.keys()) == ["action"]
    assert module.spec["action"] == leaf


# ---- process_action_space: argument forms and messages -----------------------------------

def test_action_space_given_as_a_spec_error_names_its_type():
    with pytest.raises(TypeError, match=r"^QValueModule: action_space must be a string such as "
                                        r"'one_hot', got a OneHot spec; pass specs as spec=\.$"):
        QValueModule(action_space=OneHot(3))


def test_neither_action_space_nor_spec_message():
    with pytest.raises(ValueError, match=r"^QValueModule: action_space or spec must be given to "
                                         r"infer the action space, got neither\.$"):
        QValueModule()


def test_disagreeing_action_space_and_spec_message_names_the_spec_type():
    with pytest.raises(ValueError, match=r"^QValueModule: action_space and spec must agree, got "
                                         r"action_space='categorical' and a OneHot spec"):
        QValueModule(action_space="categorical", spec=OneHot(3))


def test_missing_var_nums_message():
    with pytest.raises(ValueError, match=r"^QValueModule: var_nums must be given for the "
                                         r"'mult_one_hot' action space \(or pass a spec with "
                                         r"nvec\), got None\.$"):
        QValueModule(action_space="mult_one_hot")


def test_int_var_nums_is_one_block():
    module = QValueModule(action_space="mult_categorical", var_nums=3)
    assert module.var_nums == [3]
    td = module(TensorDict({"action_value": torch.tensor([[0.0, 2.0, 1.0]])}, [1]))
    assert td["action"].tolist() == [[1]]


# ---- the action's shape, projection --------------------------------------------------------

def test_action_shape_error_messages_name_the_owner_and_the_hint():
    spec = Categorical(4, shape=(2, 1))  # the action would be (2,): not (2, 1)
    td = TensorDict({"action_value": _mut_values(3, 4)}, [3])
    with pytest.raises(ValueError, match=r"^QValueModule: the action must have shape \(3, 2, 1\) "
                                         r"to match the spec, got shape \(3,\); strict_shape="
                                         r"'auto' reshapes it\.$"):
        QValueModule(spec=spec)(td.clone())
    with pytest.raises(ValueError, match=r"^QValueModule: the action must have shape \(3, 2, 1\) "
                                         r"to match the spec, got shape \(3,\)\.$"):
        QValueModule(spec=spec, strict_shape="auto")(td.clone())


def test_safe_projects_the_action_onto_a_masked_spec():
    spec = OneHot(3)
    spec.update_mask(torch.tensor([False, True, True]))
    values = torch.tensor([5.0, 1.0, 2.0])  # the greedy action (index 0) is masked out
    action = QValueModule(spec=spec, safe=True)(values)[0]
    assert spec.is_in(action)
    assert action.long().argmax().item() != 0
    unsafe = QValueModule(spec=spec)(values)[0]
    assert unsafe.long().argmax().item() == 0


# ---- QValueHook forwards its arguments ---------------------------------------------------

def _mut_hooked(hook, n_out=4):
    net = nn.Linear(3, n_out)
    net.register_forward_hook(hook)
    return net


def test_hook_forwards_var_nums():
    net = _mut_hooked(QValueHook("mult_one_hot", var_nums=[2, 2]))
    action, values, chosen = net(torch.zeros(5, 3))
    assert action.shape == (5, 4) and torch.equal(action.sum(-1), torch.full((5,), 2))


def test_hook_forwards_action_value_key_and_out_keys():
    out_keys = ["act", "q", "best"]
    hook = QValueHook("one_hot", action_value_key="q", out_keys=out_keys)
    assert hook.action_value_key == "q"
    assert hook.qvalue_model.out_keys == out_keys
    action, values, chosen = _mut_hooked(hook)(torch.zeros(5, 3))
    assert action.shape == (5, 4) and chosen.shape == (5, 1)


def test_hook_forwards_action_mask_key():
    hook = QValueHook("one_hot", action_mask_key="mask")
    assert hook.qvalue_model.action_mask_key == "mask"
    assert hook.qvalue_model.in_keys == ["action_value", "mask"]


def test_hook_with_a_nested_action_value_key_joins_it():
    hook = QValueHook("one_hot", action_value_key=("nested", "q"),
                      out_keys=["action", ("nested", "q"), "chosen_action_value"])
    assert hook.action_value_key == "nested_q"
    action, values, chosen = _mut_hooked(hook)(torch.zeros(5, 3))
    assert action.shape == (5, 4)


# ---- QValueActor forwards its arguments ---------------------------------------------------

def test_actor_reads_the_given_in_keys():
    actor = QValueActor(nn.Linear(3, 4), in_keys=["obs"], spec=OneHot(4))
    td = actor(TensorDict({"obs": torch.zeros(5, 3)}, [5]))
    assert td["action"].shape == (5, 4)


def test_actor_keeps_action_value_key_as_given():
    actor = QValueActor(nn.Linear(3, 4), spec=OneHot(4), action_value_key="q")
    assert actor.action_value_key == "q"
    assert QValueActor(nn.Linear(3, 4), spec=OneHot(4)).action_value_key is None


def test_actor_without_spec_uses_the_given_action_space():
    actor = QValueActor(nn.Linear(3, 4), action_space="categorical")
    assert actor.action_space == "categorical"
    td = actor(TensorDict({"observation": torch.zeros(5, 3)}, [5]))
    assert td["action"].shape == (5,)
    assert set(actor.spec.keys()) == {"action", "action_value", "chosen_action_value"}


def test_actor_forwards_the_action_mask():
    net = nn.Linear(3, 4)
    actor = QValueActor(net, spec=Categorical(4), action_mask_key="mask")
    obs = torch.randn(5, 3)
    mask = torch.ones(5, 4, dtype=torch.bool)
    mask[:, net(obs).argmax(-1)] = False  # hide every row's greedy action
    td = actor(TensorDict({"observation": obs, "mask": mask}, [5]))
    assert mask.gather(-1, td["action"].unsqueeze(-1)).all()


def test_actor_safe_projects_onto_a_masked_spec():
    spec = OneHot(4)
    spec.update_mask(torch.tensor([False, True, True, True]))
    net = nn.Linear(3, 4)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.copy_(torch.tensor([9.0, 0.0, 0.0, 0.0]))
    td = TensorDict({"observation": torch.zeros(2, 3)}, [2])
    assert QValueActor(net, spec=spec)(td.clone())["action"].long()[:, 0].all()
    action = QValueActor(net, spec=spec, safe=True)(td.clone())["action"]
    assert spec.is_in(action)


def test_actor_strict_shape_defaults_to_true_and_is_forwarded():
    spec = Categorical(4, shape=(1,))
    td = TensorDict({"observation": torch.zeros(5, 3)}, [5])
    with pytest.raises(ValueError, match=r"^QValueModule: the action must have shape \(5, 1\)"):
        QValueActor(nn.Linear(3, 4), spec=spec)(td.clone())
    assert QValueActor(nn.Linear(3, 4), spec=spec, strict_shape="auto")(td.clone())["action"].shape == (5, 1)
    assert QValueActor(nn.Linear(3, 4), spec=spec, strict_shape=False)(td.clone())["action"].shape == (5,)


def test_actor_does_not_change_the_callers_composite():
    spec = Composite({"action": OneHot(4)})
    actor = QValueActor(nn.Linear(3, 4), spec=spec)
    assert list(spec.keys()) == ["action"]
    assert set(actor.spec.keys()) == {"action", "action_value", "chosen_action_value"}


def test_actor_with_a_batched_leaf_spec_matches_torchrl():
    torch.manual_seed(0)
    import torchrl.data as tdata
    ours = QValueActor(nn.Linear(3, 4), spec=OneHot(4, shape=(2, 4)))
    theirs = tm.QValueActor(nn.Linear(3, 4), spec=tdata.OneHot(4, shape=(2, 4)))
    theirs.load_state_dict(ours.state_dict())
    obs = torch.randn(2, 3)
    a = ours(TensorDict({"observation": obs}, [2]))["action"]
    b = theirs(TensorDict({"observation": obs}, [2]))["action"]
    assert a.shape == b.shape == (2, 4)
    assert torch.equal(a.long(), b.long())


def test_non_discrete_spec_message_names_the_owner():
    with pytest.raises(ValueError, match=r"^QValueModule: spec must be a discrete action spec "
                                         r"\(OneHot, Categorical, MultiOneHot, MultiCategorical "
                                         r"or Binary\), got "):
        QValueModule(spec=Unbounded(3))
