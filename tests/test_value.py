"""rlmods.value against torchrl 0.14 (the oracle), plus what rlmods adds."""

import copy

import pytest
import torch
import torchrl.modules as tm
from tensordict import TensorDict
from tensordict.nn import NormalParamExtractor, TensorDictModule
from torch import nn
from torch.testing import assert_close

import rlmods
from rlmods import (MLP, ActorCriticOperator, ActorCriticWrapper, ActorValueOperator,
                    DdpgCnnActor, DdpgCnnQNet, DdpgMlpActor, DdpgMlpQNet, ExplorationType,
                    InvalidValueError, ProbabilisticActor, SafeModule, SafeSequential, TanhNormal,
                    ValueOperator, set_exploration_type)
from rlmods.value import ddpg_init_last_layer
from oracle_helpers import raised as _raised


def _obs(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _td(batch=5, seed=0, **extra):
    return TensorDict(observation=_obs(batch, 4, seed=seed), batch_size=[batch], **extra)


class QHead(nn.Module):
    """Q(hidden, action): one linear layer on the concatenation."""

    def __init__(self, hidden=8, action=2):
        super().__init__()
        self.linear = nn.Linear(hidden + action, 1)

    def forward(self, hidden, action):
        return self.linear(torch.cat([hidden, action], -1))


def _parts(lib, critic=False, shared=True):
    """Backbone, probabilistic policy head and value head, built from ``lib`` (rlmods or tm)."""
    torch.manual_seed(0)
    source = "hidden" if shared else "observation"
    width = 8 if shared else 4
    common = lib.SafeModule(nn.Linear(4, 8), in_keys=["observation"], out_keys=["hidden"])
    params = TensorDictModule(nn.Sequential(nn.Linear(width, 4), NormalParamExtractor()),
                              in_keys=[source], out_keys=["loc", "scale"])
    policy = lib.ProbabilisticActor(params, in_keys=["loc", "scale"],
                                    distribution_class=lib.TanhNormal, return_log_prob=True)
    if critic:
        value = lib.ValueOperator(QHead(width), in_keys=[source, "action"])
    else:
        value = lib.ValueOperator(nn.Linear(width, 1), in_keys=[source])
    return common, policy, value


def _pair(kind):
    """The same model from torchrl and from rlmods, rlmods loaded with torchrl's weights."""
    if kind == "wrapper":
        theirs = tm.ActorCriticWrapper(*_parts(tm, shared=False)[1:])
        ours = ActorCriticWrapper(*_parts(rlmods, shared=False)[1:])
    else:
        critic = kind == "critic"
        theirs_cls, ours_cls = ((tm.ActorCriticOperator, ActorCriticOperator) if critic
                                else (tm.ActorValueOperator, ActorValueOperator))
        theirs = theirs_cls(*_parts(tm, critic=critic))
        ours = ours_cls(*_parts(rlmods, critic=critic))
    for p in theirs.parameters():  # weights that differ from the seeded construction
        p.data.normal_()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


# ---- ValueOperator -----------------------------------------------------------------------

@pytest.mark.parametrize("in_keys,expected", [
    (None, ["state_value"]),
    (["observation", "action"], ["state_action_value"]),
    (["hidden"], ["state_value"]),
    ("observation", ["state_value"]),
    ([("agents", "action")], ["state_value"]),
])
def test_value_operator_default_out_keys_match_torchrl(in_keys, expected):
    ours = ValueOperator(nn.Identity(), in_keys=in_keys)
    theirs = tm.ValueOperator(nn.Identity(), in_keys=in_keys)
    assert ours.out_keys == theirs.out_keys == expected


def test_value_operator_keeps_given_out_keys():
    ours = ValueOperator(nn.Identity(), in_keys=["observation", "action"], out_keys=["q"])
    assert ours.out_keys == ["q"] and ours.in_keys == ["observation", "action"]


@pytest.mark.torchrl_bug
def test_torchrl_reads_a_string_in_key_as_a_substring():
    # "action" in "action_mask" is a substring test on a str: a Q key for a state value
    assert tm.ValueOperator(nn.Identity(), in_keys="action_mask").out_keys == [
        "state_action_value"]


def test_string_in_key_better_than_torchrl():
    assert ValueOperator(nn.Identity(), in_keys="action_mask").out_keys == ["state_value"]


def test_value_operator_outputs_match_torchrl_on_every_call_path():
    torch.manual_seed(0)
    net = QHead(hidden=4)
    ours = ValueOperator(copy.deepcopy(net), in_keys=["observation", "action"])
    theirs = tm.ValueOperator(net, in_keys=["observation", "action"])
    td = _td(action=_obs(5, 2, seed=1))
    expected = theirs(td.clone())["state_action_value"]
    assert_close(ours(td.clone())["state_action_value"], expected)
    out = ours(td.clone(), tensordict_out=TensorDict(batch_size=[5]))
    assert list(out.keys()) == ["state_action_value"]
    assert_close(out["state_action_value"], expected)
    assert_close(ours(observation=td["observation"], action=td["action"]), expected)


def test_value_operator_names_a_missing_key():
    critic = ValueOperator(QHead(hidden=4), in_keys=["observation", "action"])
    with pytest.raises(KeyError, match=r"ValueOperator: expected key 'action' in the input "
                                       r"tensordict, found keys \['observation'\]"):
        critic(_td())


# ---- the three operators against torchrl -----------------------------------------------

@pytest.mark.parametrize("kind", ["value", "critic", "wrapper"])
@pytest.mark.parametrize("mode", [ExplorationType.DETERMINISTIC, ExplorationType.RANDOM])
def test_operators_match_torchrl(kind, mode):
    ours, theirs = _pair(kind)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.in_keys == theirs.in_keys and sorted(ours.out_keys) == sorted(theirs.out_keys)
    with set_exploration_type(mode):
        torch.manual_seed(1)
        expected = theirs(_td())
        torch.manual_seed(1)
        out = ours(_td())
    assert sorted(out.keys()) == sorted(expected.keys())
    for key in expected.keys():
        assert_close(out[key], expected[key])


@pytest.mark.parametrize("kind", ["value", "wrapper"])
@pytest.mark.parametrize("getter", ["get_policy_operator", "get_value_operator",
                                    "get_policy_head", "get_value_head"])
def test_sub_operators_match_torchrl(kind, getter):
    ours, theirs = _pair(kind)
    td = _td()
    if kind == "value" and getter.endswith("head"):
        td = ours.module[0](td)  # a head reads the hidden key
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        expected = getattr(theirs, getter)()(td.clone())
        out = getattr(ours, getter)()(td.clone())
    assert sorted(out.keys()) == sorted(expected.keys())
    for key in expected.keys():
        assert_close(out[key], expected[key])


def test_policy_operator_of_a_probabilistic_head_is_probabilistic_and_shares_modules():
    model, _ = _pair("value")
    policy = model.get_policy_operator()
    assert isinstance(policy, rlmods.SafeProbabilisticTensorDictSequential)
    assert policy.module[0] is model.module[0]
    assert all(a is b for a, b in zip(policy.module[1:], model.module[1].module))
    dist = policy.get_dist(_td())
    assert isinstance(dist, rlmods.TanhNormal)
    value = model.get_value_operator()
    assert value.module[0] is model.module[0] and value.module[1] is model.module[2]


def test_policy_operator_of_a_deterministic_head_is_a_sequence():
    common = SafeModule(nn.Linear(4, 8), in_keys=["observation"], out_keys=["hidden"])
    policy = SafeModule(nn.Linear(8, 2), in_keys=["hidden"], out_keys=["action"])
    model = ActorValueOperator(common, policy, ValueOperator(nn.Linear(8, 1), ["hidden"]))
    operator = model.get_policy_operator()
    assert type(operator) is rlmods.SafeSequential
    assert sorted(operator(_td()).keys()) == ["action", "hidden", "observation"]


def test_get_policy_operator_works_with_and_without_shared_parameters():
    """The reference page: ``model.get_policy_operator()`` works in both cases."""
    for kind in ("value", "wrapper"):
        model, _ = _pair(kind)
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            out = model.get_policy_operator()(_td())
        assert out["action"].shape == (5, 2) and "state_value" not in out.keys()


def test_critic_operator_is_the_whole_model_and_has_no_value_operator():
    ours, theirs = _pair("critic")
    assert ours.get_critic_operator() is ours
    assert ours.get_policy_head() is ours.module[1] and ours.get_value_head() is ours.module[2]
    with pytest.raises(InvalidValueError, match=r"ActorCriticOperator: get_value_operator\(\) "
                                                r"is for a state value V\(s\).*call "
                                                r"get_critic_operator\(\) instead\."):
        ours.get_value_operator()
    assert isinstance(_raised(theirs.get_value_operator), RuntimeError)


def test_wrapper_returns_its_modules():
    ours, _ = _pair("wrapper")
    assert ours.get_policy_operator() is ours.module[0] is ours.get_policy_head()
    assert ours.get_value_operator() is ours.module[1] is ours.get_value_head()


@pytest.mark.parametrize("kind", ["value", "critic", "wrapper"])
def test_fallback_paths_give_the_same_outputs(kind):
    ours, _ = _pair(kind)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        short = ours(_td())
        into = ours(_td(), tensordict_out=TensorDict(batch_size=[5]))
    for key in ours.out_keys:
        assert_close(into[key], short[key])


def test_short_path_never_writes_through_from_any(monkeypatch):
    model, _ = _pair("value")

    def refuse(*args, **kwargs):
        raise AssertionError("TensorDict.from_any was called")

    monkeypatch.setattr(TensorDict, "from_any", refuse)
    with set_exploration_type(ExplorationType.RANDOM):
        assert model(_td())["state_value"].shape == (5, 1)


@pytest.mark.parametrize("kind", ["value", "critic"])
def test_backbone_runs_once_per_call(kind):
    model, _ = _pair(kind)
    calls = []
    model.module[0].module.register_forward_hook(lambda *args: calls.append(1))
    model(_td())
    assert len(calls) == 1


# ---- what is shared: gradients -----------------------------------------------------------

def _grads(module):
    return [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters()]


def test_policy_loss_reaches_the_backbone_and_value_loss_not_the_policy_head():
    model, _ = _pair("value")
    with set_exploration_type(ExplorationType.RANDOM):
        td = model(_td())
    td["action_log_prob"].mean().backward(retain_graph=True)
    assert all(_grads(model.get_policy_head())) and all(_grads(model.module[0]))
    assert not any(_grads(model.get_value_head()))
    model.zero_grad(set_to_none=True)
    td["state_value"].pow(2).mean().backward()
    assert all(_grads(model.get_value_head())) and all(_grads(model.module[0]))
    assert not any(_grads(model.get_policy_head()))


def test_wrapper_shares_no_parameter():
    model, _ = _pair("wrapper")
    policy = {id(p) for p in model.get_policy_operator().parameters()}
    assert not policy & {id(p) for p in model.get_value_operator().parameters()}


def test_critic_gradient_reaches_the_policy_through_the_action():
    model, _ = _pair("critic")
    with set_exploration_type(ExplorationType.RANDOM):
        model(_td())["state_action_value"].mean().backward()
    assert all(_grads(model.get_policy_head())) and all(_grads(model.module[0]))


# ---- errors --------------------------------------------------------------------------------

def test_a_head_without_its_in_keys_names_the_key():
    model, _ = _pair("value")
    with pytest.raises(KeyError, match=r"ValueOperator: expected key 'hidden' in the input "
                                       r"tensordict, found keys \['observation'\]"):
        model.get_value_head()(_td())
    with pytest.raises(KeyError, match=r"expected key 'hidden' in the input tensordict"):
        model.get_policy_head()(_td())


@pytest.mark.parametrize("cls", [ActorValueOperator, ActorCriticOperator])
def test_common_operator_must_write_what_the_heads_read(cls):
    common, policy, value = _parts(rlmods, critic=cls is ActorCriticOperator)
    common.out_keys = ["embedding"]
    with pytest.raises(KeyError, match=rf"{cls.__name__}: the policy head must read a key the "
                                       r"common operator writes \(out_keys \['embedding'\]\), "
                                       r"got in_keys \['hidden'\]"):
        cls(common, policy, value)
    common, policy, value = _parts(rlmods)
    value = ValueOperator(nn.Linear(4, 1), in_keys=["observation"])
    with pytest.raises(KeyError, match=r"ActorValueOperator: the value head must read a key the "
                                       r"common operator writes \(out_keys \['hidden'\]\), got "
                                       r"in_keys \['observation'\]"):
        ActorValueOperator(common, policy, value)


def test_critic_must_read_the_action():
    common, policy, value = _parts(rlmods)
    with pytest.raises(InvalidValueError, match=r"ActorCriticOperator: the value head must read "
                                                r"the action the policy head writes \(one of "
                                                r"\['loc', 'scale', 'action', "
                                                r"'action_log_prob'\]\), got in_keys \['hidden'\]"):
        ActorCriticOperator(common, policy, value)


@pytest.mark.torchrl_bug
def test_torchrl_accepts_a_critic_that_ignores_the_action():
    common, policy, _ = _parts(tm)
    value = tm.ValueOperator(nn.Linear(8, 1), in_keys=["hidden"], out_keys=["q"])
    tm.ActorCriticOperator(common, policy, value)  # Q(s) with no action: no error


def test_critic_that_ignores_the_action_better_than_torchrl():
    common, policy, _ = _parts(rlmods)
    value = ValueOperator(nn.Linear(8, 1), in_keys=["hidden"], out_keys=["q"])
    with pytest.raises(InvalidValueError, match="must read the action"):
        ActorCriticOperator(common, policy, value)


def test_critic_writing_state_value_is_refused_as_in_torchrl():
    def build(lib, cls):
        common, policy, _ = _parts(lib)
        value = lib.ValueOperator(QHead(), in_keys=["hidden", "action"], out_keys=["state_value"])
        return cls(common, policy, value)

    with pytest.raises(InvalidValueError, match=r"ActorCriticOperator: the value head must "
                                                r"write a state-action value such as "
                                                r"'state_action_value', got out_keys "
                                                r"\['state_value'\]"):
        build(rlmods, ActorCriticOperator)
    assert isinstance(_raised(lambda: build(tm, tm.ActorCriticOperator)), RuntimeError)


@pytest.mark.parametrize("cls,args,name", [
    (ActorValueOperator, (nn.Linear(4, 8), None, None), "common_operator"),
    (ActorValueOperator, (None, nn.Linear(4, 8), None), "policy_operator"),
    (ActorValueOperator, (None, None, nn.Linear(4, 8)), "value_operator"),
    (ActorCriticWrapper, (None, nn.Linear(4, 1)), "value_operator"),
    (ActorCriticWrapper, (nn.Linear(4, 1), None), "policy_operator"),
])
def test_operators_must_be_tensordict_modules(cls, args, name):
    policy = SafeModule(nn.Linear(8, 2), in_keys=["hidden"], out_keys=["action"])
    args = tuple(policy if a is None else a for a in args)
    with pytest.raises(TypeError, match=rf"{cls.__name__}: {name} must be a TensorDict module "
                                        r".*got Linear"):
        cls(*args)


# ---- DDPG networks ---------------------------------------------------------------------------

NETS = {
    "mlp_actor": (DdpgMlpActor, tm.DdpgMlpActor, {"action_dim": 2}, ((4, 6),)),
    "mlp_qnet": (DdpgMlpQNet, tm.DdpgMlpQNet, {}, ((4, 6), (4, 2))),
    "cnn_actor": (DdpgCnnActor, tm.DdpgCnnActor, {"action_dim": 2}, ((2, 3, 64, 64),)),
    "cnn_qnet": (DdpgCnnQNet, tm.DdpgCnnQNet, {}, ((2, 3, 64, 64), (2, 2))),
    "cnn_actor_pooled": (DdpgCnnActor, tm.DdpgCnnActor, {"action_dim": 2, "use_avg_pooling": True},
                         ((2, 3, 64, 64),)),
    "cnn_qnet_flat": (DdpgCnnQNet, tm.DdpgCnnQNet, {"use_avg_pooling": False},
                      ((2, 3, 64, 64), (2, 2))),
    "mlp_actor_sized": (DdpgMlpActor, tm.DdpgMlpActor,
                        {"action_dim": 1, "mlp_net_kwargs": {"in_features": 3, "num_cells": [16, 16]}},
                        ((4, 3),)),
}


def _inputs(shapes):
    return [_obs(*shape, seed=i) for i, shape in enumerate(shapes)]


@pytest.mark.parametrize("name", list(NETS))
def test_a_torchrl_checkpoint_loads_strictly_and_gives_the_same_outputs(name):
    ours_cls, theirs_cls, kwargs, shapes = NETS[name]
    inputs = _inputs(shapes)
    theirs = theirs_cls(**kwargs)
    theirs(*inputs)  # builds the lazy layers
    for p in theirs.parameters():
        p.data.normal_(std=0.1)
    ours = ours_cls(**kwargs)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    expected, out = theirs(*inputs), ours(*inputs)
    def layers(net):  # the layers that hold parameters, in order
        return [type(m).__name__ for m in net.modules() if list(m.parameters(recurse=False))]

    assert layers(ours) == layers(theirs)
    for a, b in zip(expected if isinstance(expected, tuple) else [expected],
                    out if isinstance(out, tuple) else [out]):
        assert_close(b, a)


@pytest.mark.parametrize("name", list(NETS))
def test_same_seed_same_initial_weights_as_torchrl(name):
    ours_cls, theirs_cls, kwargs, shapes = NETS[name]
    inputs = _inputs(shapes)
    torch.manual_seed(3)
    theirs = theirs_cls(**kwargs)
    theirs(*inputs)
    torch.manual_seed(3)
    ours = ours_cls(**kwargs)
    ours(*inputs)
    for (key, a), b in zip(theirs.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("name,scale", [("mlp_actor", 6e-3), ("mlp_qnet", 6e-3),
                                        ("cnn_actor", 6e-4), ("cnn_qnet", 6e-4)])
def test_last_layer_starts_near_zero(name, scale):
    ours_cls, _, kwargs, shapes = NETS[name]
    net = ours_cls(**kwargs)
    net(*_inputs(shapes))
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    assert float(last.weight.detach().abs().max()) <= scale / 2 and float(last.bias.detach().abs().max()) <= scale / 2
    assert float(last.weight.detach().abs().max()) > scale / 4  # drawn, not zero


LAZY_LAST = {"mlp_net_kwargs_net2": {"num_cells": [], "depth": 0}}


@pytest.mark.torchrl_bug
def test_torchrl_loses_the_ddpg_init_of_a_lazy_last_layer():
    torch.manual_seed(0)
    net = tm.DdpgMlpQNet(**LAZY_LAST)
    net(_obs(4, 6), _obs(4, 2))
    assert float(net.mlp2[-1].weight.abs().max()) > 6e-3 / 2  # the lazy default init


def test_lazy_last_layer_ddpg_init_better_than_torchrl():
    net = DdpgMlpQNet(**LAZY_LAST)
    twin = copy.deepcopy(net)  # a target network copied before the first call
    for model in (net, twin):
        model(_obs(4, 6), _obs(4, 2))
        assert float(model.mlp2[-1].weight.abs().max()) <= 6e-3 / 2
        assert not model.mlp2[-1]._forward_pre_hooks  # the hook removed itself
    assert not torch.equal(net.mlp2[-1].weight, twin.mlp2[-1].weight)  # drawn independently


def test_a_checkpoint_loaded_into_a_lazy_last_layer_is_kept():
    theirs = tm.DdpgMlpQNet(**LAZY_LAST)
    theirs(_obs(4, 6), _obs(4, 2))
    ours = DdpgMlpQNet(**LAZY_LAST)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert_close(ours(_obs(4, 6), _obs(4, 2)), theirs(_obs(4, 6), _obs(4, 2)))


def test_ddpg_init_needs_a_linear_or_conv_layer():
    with pytest.raises(InvalidValueError, match=r"ddpg_init_last_layer: module must contain an "
                                                r"nn.Linear or nn.Conv2d, got Sequential with "
                                                r"layers \['ReLU'\]"):
        ddpg_init_last_layer(nn.Sequential(nn.ReLU()))
    error = _raised(lambda: tm.models.models.ddpg_init_last_layer(nn.Sequential(nn.ReLU())))
    assert isinstance(error, RuntimeError)


def test_value_operator_over_a_ddpg_critic_writes_the_q_key():
    critic = ValueOperator(DdpgMlpQNet(), in_keys=["observation", "action"])
    out = critic(_td(action=_obs(5, 2, seed=1)))
    assert critic.out_keys == ["state_action_value"] and out["state_action_value"].shape == (5, 1)


@pytest.mark.parametrize("kind", ["value", "critic", "wrapper"])
def test_operators_write_in_place_as_torchrl(kind):
    for model in _pair(kind):
        td = _td()
        assert model(td) is td and "action" in td.keys()


# ---- one call plan: the operators are SafeSequentials and take DirectCall's ---------------
def test_operators_plain_call_equals_tensordicts_sequence_forward():
    """The plain call runs each module's direct step; tensordict's forward writes the same."""
    from tensordict.nn import TensorDictSequential

    torch.manual_seed(0)
    common = SafeModule(nn.Linear(4, 8), ["observation"], ["hidden"])
    params = SafeModule(nn.Sequential(nn.Linear(8, 4), NormalParamExtractor()), ["hidden"],
                        ["loc", "scale"])
    policy = ProbabilisticActor(params, in_keys=["loc", "scale"], distribution_class=TanhNormal,
                                return_log_prob=True)
    value = ValueOperator(nn.Linear(8, 1), in_keys=["hidden"])
    critic = ValueOperator(MLP(in_features=10, out_features=1, num_cells=[8]),
                           in_keys=["hidden", "action"], out_keys=["state_action_value"])
    models = [ActorValueOperator(common, policy, value),
              ActorCriticOperator(common, policy, critic),
              ActorCriticWrapper(SafeSequential(common, policy),
                                 ValueOperator(nn.Linear(4, 1), in_keys=["observation"]))]
    for model in models:
        td = TensorDict(observation=torch.randn(5, 4), batch_size=[5])
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            plain, general = model(td.clone()), TensorDictSequential.forward(model, td.clone())
        assert set(plain.keys(True, True)) == set(general.keys(True, True))
        for key in plain.keys(True, True):
            assert_close(plain[key], general[key], msg=f"{type(model).__name__}: {key}")



# ---- what mutation testing found untested ------------------------------------------------
@pytest.mark.parametrize("name", ["mlp_actor", "mlp_qnet", "cnn_actor", "cnn_qnet"])
def test_ddpg_nets_are_built_on_the_given_device(name):
    ours_cls, _, kwargs, _ = NETS[name]
    net = ours_cls(**kwargs, device="meta")
    assert {p.device.type for p in net.parameters()} == {"meta"}


@pytest.mark.parametrize("ours_cls, theirs_cls, inputs", [
    (DdpgCnnActor, tm.DdpgCnnActor, ((2, 3, 64, 64),)),
    (DdpgCnnQNet, tm.DdpgCnnQNet, ((2, 3, 64, 64), (2, 1)))])
def test_cnn_nets_take_conv_net_kwargs_like_torchrl(ours_cls, theirs_cls, inputs):
    kwargs = {"conv_net_kwargs": {"num_cells": [8, 8, 8]}}
    if ours_cls is DdpgCnnActor:
        kwargs["action_dim"] = 1
    ours, theirs = ours_cls(**kwargs), theirs_cls(**kwargs)
    ours(*_inputs(inputs)), theirs(*_inputs(inputs))
    shapes = {key: value.shape for key, value in ours.state_dict().items()}
    assert shapes == {key: value.shape for key, value in theirs.state_dict().items()}
    assert shapes["convnet.0.weight"][0] == 8


def test_qnets_join_observation_and_action_on_the_feature_dim_for_any_batch():
    net = DdpgMlpQNet()
    obs, action = _obs(2, 3, 6), _obs(2, 3, 2, seed=1)
    out = net(obs, action)
    assert out.shape == (2, 3, 1)
    assert_close(out.reshape(6, 1), net(obs.reshape(6, 6), action.reshape(6, 2)))
    cnn = DdpgCnnQNet()
    images, action = _obs(2, 2, 3, 64, 64), _obs(2, 2, 1, seed=1)
    out = cnn(images, action)
    assert out.shape == (2, 2, 1)
    assert_close(out.reshape(4, 1), cnn(images.reshape(4, 3, 64, 64), action.reshape(4, 1)))


def test_ddpg_init_last_layer_default_scale_is_6e_4():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 64), nn.Tanh(), nn.Linear(64, 64))
    ddpg_init_last_layer(net)
    weight = net[-1].weight.detach().abs()
    assert float(weight.max()) <= 3e-4 and float(weight.max()) > 1.5e-4
