"""Tests for rlmods/actors.py: key contract, errors, and differential tests against torchrl."""

import inspect

import pytest
import torch
import torchrl.data as rl_data
import torchrl.modules as rl
from tensordict import TensorDict, tensorclass
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.modules.tensordict_module.actors import MultiStepActorWrapper as RlMultiStep

import rlmods
from rlmods import (Actor, Bounded, Composite, InvalidTypeError, InvalidValueError,
                    MultiStepActorWrapper, OneHot, SafeModule, SafeSequential, TanhModule, Unbounded,
                    VmapModule)
import torchrl.modules as tm
from torch.testing import assert_close
from rlmods.actors import unbatched_spec

NAMES = ["SafeModule", "SafeSequential", "Actor", "TanhModule", "MultiStepActorWrapper", "VmapModule"]
TORCHRL = {"MultiStepActorWrapper": RlMultiStep}


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torchrl(name):
    theirs = TORCHRL.get(name, getattr(rl, name))
    def params(cls):  # names, kinds and defaults (annotations may differ)
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert params(getattr(rlmods, name)) == params(theirs)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))


def _data(batch=(5,), scale=1.0, seed=1):
    torch.manual_seed(seed)
    return TensorDict(observation=scale * torch.randn(*batch, 3), batch_size=batch)


def test_actor_matches_torchrl_with_loaded_weights():
    theirs = rl.Actor(_net(0), spec=rl_data.Bounded(-1.0, 1.0, shape=(2,)))
    ours = Actor(_net(1), spec=Bounded(-1.0, 1.0, shape=(2,)))
    ours.load_state_dict(theirs.state_dict())  # checkpoint compatibility
    data = _data()
    torch.testing.assert_close(ours(data.clone())["action"], theirs(data.clone())["action"])
    assert ours.in_keys == ["observation"] and ours.out_keys == ["action"]


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_safe_projection_matches_torchrl(scale):
    theirs = rl.Actor(_net(), spec=rl_data.Bounded(-0.5, 0.5, shape=(2,)), safe=True)
    ours = Actor(_net(), spec=Bounded(-0.5, 0.5, shape=(2,)), safe=True)
    data = _data(scale=scale)
    action = ours(data.clone())["action"]
    torch.testing.assert_close(action, theirs(data.clone())["action"])
    assert bool((action.abs() <= 0.5).all())


def test_safe_projection_one_hot():
    # torchrl's OneHot.project samples with multinomial on the raw values (it fails on negative
    # logits); rlmods' spec projects to the argmax, so only validity is compared here.
    ours = SafeModule(_net(), ["observation"], ["action"], spec=OneHot(2), safe=True)
    action = ours(_data())["action"]
    assert action.dtype == torch.bool and bool((action.sum(-1) == 1).all())


def test_safe_projection_with_batched_spec_better_than_torchrl():
    # A spec from a batched env: shape (4, 2) = (env batch, action dim). The data has another batch.
    data = _data(batch=(10,), scale=100.0)
    ours = Actor(_net(), spec=Bounded(-0.5, 0.5, shape=(4, 2)), safe=True)
    action = ours(data)["action"]
    assert action.shape == (10, 2) and bool((action.abs() <= 0.5).all())


@pytest.mark.torchrl_bug
def test_torchrl_projects_with_the_batched_spec():
    theirs = rl.Actor(_net(), spec=rl_data.Bounded(-0.5, 0.5, shape=(4, 2)), safe=True)
    with pytest.raises(RuntimeError, match="broadcast"):  # projects with the (4, 2) spec
        theirs(_data(batch=(10,), scale=100.0))


def test_per_env_bounds_are_kept():
    low = torch.tensor([[-1.0], [-2.0]])
    ours = SafeModule(lambda x: x, ["x"], ["y"], spec=Bounded(low, 3.0, shape=(2, 1)), safe=True)
    out = ours(TensorDict(x=torch.full((5, 2, 1), -10.0), batch_size=[5, 2]))["y"]
    assert out[:, 0].eq(-1.0).all() and out[:, 1].eq(-2.0).all()


def test_unbatched_spec_shapes():
    assert rlmods.actors.unbatched_spec(Bounded(-1.0, 1.0, shape=(3, 4, 2))).shape == (2,)
    assert rlmods.actors.unbatched_spec(OneHot(5, shape=(3, 5))).shape == (5,)
    assert rlmods.actors.unbatched_spec(Bounded(-1.0, 1.0, shape=())).shape == ()


def test_nested_keys():
    spec = Bounded(-1.0, 1.0, shape=(3, 2))
    ours = Actor(_net(), in_keys=[("agents", "observation")], out_keys=[("agents", "action")],
                 spec=spec, safe=True)
    data = TensorDict({("agents", "observation"): 100 * torch.randn(4, 3, 3)}, batch_size=[4])
    out = ours(data)
    assert out["agents", "action"].shape == (4, 3, 2)
    assert bool((out["agents", "action"].abs() <= 1).all())
    assert list(ours.spec.keys(True, True)) == [("agents", "action")]


def test_no_from_any_on_the_write_path(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("TensorDict.from_any was called")

    monkeypatch.setattr(TensorDict, "from_any", boom)
    ours = Actor(_net(), spec=Bounded(-1.0, 1.0, shape=(2,)), safe=True)
    assert ours(_data())["action"].shape == (5, 2)
    multi = SafeModule(lambda x: (x, 2 * x), ["observation"], ["a", "b"])
    assert multi(_data())["b"].shape == (5, 3)
    with pytest.raises(AssertionError, match="from_any"):  # the check can fail: torchrl writes through it
        rl.Actor(_net())(_data())


def test_keyword_call_and_tensordict_out():
    ours = Actor(_net())
    obs = torch.randn(5, 3)
    action = ours(observation=obs)  # tensordict's dispatch: tensors in, tensors out
    torch.testing.assert_close(action, ours.module(obs))
    empty = TensorDict(batch_size=[5])
    ours(_data(), tensordict_out=empty)
    assert list(empty.keys()) == ["action"]


def test_multiple_out_keys_with_composite_spec():
    spec = Composite(a=Bounded(0.0, 1.0, shape=(3,)), b=Unbounded(3))
    ours = SafeModule(lambda x: (x, 2 * x), ["observation"], ["a", "b"], spec=spec, safe=True)
    out = ours(_data(scale=10.0))
    assert bool(((out["a"] >= 0) & (out["a"] <= 1)).all())
    torch.testing.assert_close(out["b"], 2 * out["observation"])


def test_spec_out_keys_mismatch_names_both():
    with pytest.raises(ValueError, match=r"spec keys must be among the out_keys \['action'\], got spec keys "
                                         r"\['act'\] \('act' not an out_key\)"):
        Actor(_net(), spec=Composite(act=Bounded(-1.0, 1.0, shape=(2,))))


def test_single_spec_many_out_keys_error():
    with pytest.raises(ValueError, match=r"SafeModule: a single \(non-Composite\) spec needs exactly one "
                                         r"out_key, got out_keys=\['a', 'b'\]"):
        SafeModule(lambda x: (x, x), ["x"], ["a", "b"], spec=Unbounded(3))


def test_safe_without_spec_error():
    with pytest.raises(ValueError, match=r"Actor: safe=True needs a spec for at least one out_key, "
                                         r"got no spec for out_keys=\['action'\]"):
        Actor(_net(), safe=True)


def test_spec_type_error():
    with pytest.raises(TypeError, match="Actor: spec must be a TensorSpec or a Composite, got dict"):
        Actor(_net(), spec={"low": -1})
    with pytest.raises(TypeError, match="Actor: spec must be a Composite, got Bounded"):
        Actor(_net()).spec = Bounded(-1.0, 1.0, shape=(2,))


def test_missing_key_error():
    with pytest.raises(KeyError, match=r"Actor: expected key 'observation' in the input tensordict, "
                                       r"found keys \['obs'\]"):
        Actor(_net())(TensorDict(obs=torch.zeros(3)))


def test_wrong_number_of_outputs_error():
    module = SafeModule(lambda x: (x, x, x), ["x"], ["a", "b"])
    with pytest.raises(ValueError, match=r"SafeModule: the module must return one tensor per out_key "
                                         r"\(2: \['a', 'b'\]\), got 3"):
        module(TensorDict(x=torch.zeros(3)))


def test_projection_shape_error():
    ours = SafeModule(lambda x: x, ["x"], ["y"], spec=Bounded(torch.tensor([-1.0, -2.0]), 1.0, shape=(2,)),
                      safe=True)
    with pytest.raises(ValueError, match=r"Bounded: the value to project must end with shape \(2,\), got "
                                         r"shape \(4, 3\)"):
        ours(TensorDict(x=torch.zeros(4, 3), batch_size=[4]))


def test_get_dist_is_delta_at_action_like_torchrl():
    theirs, ours = rl.Actor(_net()), Actor(_net())
    data = _data()
    dist, rl_dist = ours.get_dist(data.clone()), theirs.get_dist(data.clone())
    action = ours(data.clone())["action"]
    for shift in (0.0, 1.0):  # +inf at the action, -inf elsewhere (torchrl's docstring says 0)
        torch.testing.assert_close(dist.log_prob(action + shift), rl_dist.log_prob(action + shift))
    assert bool(torch.isposinf(dist.log_prob(action)).all())


def test_random_writes_a_spec_draw():
    ours = Actor(_net(), spec=Bounded(-1.0, 1.0, shape=(2,)))
    data = ours.random(_data())
    assert data["action"].shape == (5, 2) and bool((data["action"].abs() <= 1).all())


def test_safe_sequential_matches_torchrl():
    def build(lib, data_lib, seed):
        first = lib.SafeModule(_net(seed), ["observation"], ["hidden"], spec=data_lib.Unbounded(2))
        second = TensorDictModule(nn.Linear(2, 1), ["hidden"], ["value"])
        second.load_state_dict({"module.weight": torch.ones(1, 2), "module.bias": torch.zeros(1)})
        return lib.SafeSequential(first, second)

    theirs, ours = build(rl, rl_data, 0), build(rlmods, rlmods, 1)
    ours.load_state_dict(theirs.state_dict())
    data = _data()
    torch.testing.assert_close(ours(data.clone())["value"], theirs(data.clone())["value"])
    assert sorted(ours.spec.keys()) == ["hidden", "value"] and ours.spec["value"] is None
    assert ours.in_keys == ["observation"] and ours.out_keys == theirs.out_keys


def test_safe_sequential_keeps_a_nested_spec_like_torchrl():
    def build(lib, data_lib):
        leaf = data_lib.Bounded(-1.0, 1.0, shape=(2,))
        first = lib.SafeModule(_net(), ["observation"], [("agent", "hidden")],
                               spec=data_lib.Composite(agent=data_lib.Composite(hidden=leaf)))
        second = TensorDictModule(lambda h: h.sum(-1, keepdim=True), [("agent", "hidden")],
                                  [("agent", "value")])
        return lib.SafeSequential(first, second)

    ours, theirs = build(rlmods, rlmods), build(rl, rl_data)
    for seq in (ours, theirs):
        assert isinstance(seq.spec["agent", "hidden"], (Bounded, rl_data.Bounded))
        assert seq.spec["agent", "value"] is None
    torch.testing.assert_close(ours.spec["agent", "hidden"].space.high,
                               theirs.spec["agent", "hidden"].space.high)


@pytest.mark.parametrize("kwargs", [{}, {"low": -2.0, "high": 1.0}, {"clamp": True},
                                    {"low": -2.0, "high": 1.0, "clamp": True}])
def test_tanh_module_matches_torchrl(kwargs):
    data = TensorDict(action=torch.linspace(-30, 30, 13))
    ours = TanhModule(in_keys=["action"], **kwargs)(data.clone())["action"]
    theirs = rl.TanhModule(in_keys=["action"], **kwargs)(data.clone())["action"]
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)  # clamp moves ends by ~1e-6


@pytest.mark.parametrize("clamp", [False, True])
def test_tanh_module_clamp_stays_strictly_inside(clamp):
    out = TanhModule(in_keys=["action"], low=-2.0, high=1.0, clamp=clamp)(
        TensorDict(action=torch.tensor([-30.0, 30.0])))["action"]
    inside = bool(out[0] > -2.0) and bool(out[1] < 1.0)  # tanh(30) is 1.0 in float32
    assert inside == clamp


def test_tanh_module_spec_and_state_dict():
    spec = Composite(a=Bounded(-3.0, 0.0, shape=(4,)), b=Bounded(0.0, 3.0, shape=(4,)))
    rl_spec = rl_data.Composite(a=rl_data.Bounded(-3.0, 0.0, shape=(4,)), b=rl_data.Bounded(0.0, 3.0, shape=(4,)))
    ours = TanhModule(in_keys=["x", "y"], out_keys=["a", "b"], spec=spec)
    theirs = rl.TanhModule(in_keys=["x", "y"], out_keys=["a", "b"], spec=rl_spec)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    data = TensorDict(x=torch.randn(4), y=torch.randn(4))
    for key in "ab":
        torch.testing.assert_close(ours(data.clone())[key], theirs(data.clone())[key])


def test_tanh_module_errors():
    with pytest.raises(ValueError, match=r"TanhModule: low must match the spec's low \[-1.0\], got -2.0"):
        TanhModule(in_keys=["action"], spec=Bounded(-1.0, 1.0, shape=(1,)), low=-2.0)
    with pytest.raises(ValueError, match=r"TanhModule: high must not be below low for 'action', got "
                                         r"low=1.0 and high=-1.0"):
        TanhModule(in_keys=["action"], low=1.0, high=-1.0)
    with pytest.raises(ValueError, match=r"TanhModule: out_keys must have as many entries as in_keys"):
        TanhModule(in_keys=["a", "b"], out_keys=["c"])


def _planner(n_steps=3, action_dim=2):
    # plan[t] = observation + t, for t in 0..n_steps-1
    def plan(obs):
        steps = torch.arange(float(n_steps)).view(n_steps, 1)
        return obs[..., :action_dim].unsqueeze(-2) + steps
    return TensorDictModule(plan, in_keys=["observation"], out_keys=["action"])


@pytest.mark.parametrize("options", [{"n_steps": 3}, {"n_steps": 3, "replan_interval": 2},
                                     {"n_steps": 3, "keep_dim": True}, {}])
def test_multistep_matches_torchrl(options):
    ours, theirs = MultiStepActorWrapper(_planner(), **options), RlMultiStep(_planner(), **options)
    data_ours, data_theirs = _data(batch=(4,)), _data(batch=(4,))
    init = torch.ones(4, 1, dtype=torch.bool)
    for step in range(7):
        data_ours["is_init"], data_theirs["is_init"] = init.clone(), init.clone()
        torch.testing.assert_close(ours(data_ours)["action"], theirs(data_theirs)["action"])
        torch.testing.assert_close(data_ours["counter"], data_theirs["counter"])
        init = torch.tensor([[step == 2], [False], [step == 4], [False]])
        data_ours["observation"] = data_ours["observation"] + 1
        data_theirs["observation"] = data_theirs["observation"] + 1
    assert ours.out_keys == theirs.out_keys and ours.in_keys == theirs.in_keys


def test_multistep_replays_plan():
    actor = MultiStepActorWrapper(_planner(action_dim=1), n_steps=3)
    data = TensorDict(observation=torch.zeros(1, 3), is_init=torch.ones(1, 1, dtype=torch.bool), batch_size=[1])
    actions = []
    for _ in range(5):
        actions.append(actor(data)["action"].item())
        data["is_init"] = torch.zeros(1, 1, dtype=torch.bool)
    assert actions == [0.0, 1.0, 2.0, 0.0, 1.0]
    assert data["action_orig"].shape == (1, 3, 1)


def test_multistep_chunk_keys():
    chunk = TensorDictModule(lambda obs: obs.unsqueeze(-2).expand(-1, 3, -1), ["observation"], ["action_chunk"])
    ours, theirs = MultiStepActorWrapper(chunk, n_steps=3), RlMultiStep(chunk, n_steps=3)
    assert ours.action_keys == theirs.action_keys == ["action"]
    assert ours.out_keys == theirs.out_keys


def test_multistep_errors():
    with pytest.raises(ValueError, match=r"MultiStepActorWrapper: replan_interval must be in \[1, n_steps=3\], got 4"):
        MultiStepActorWrapper(_planner(), n_steps=3, replan_interval=4)
    actor = MultiStepActorWrapper(_planner(), n_steps=3)
    with pytest.raises(KeyError, match="MultiStepActorWrapper: expected key 'is_init' in the input tensordict"):
        actor(_data(batch=(2,)))
    data = _data(batch=(2,))
    data["is_init"] = torch.tensor([[True], [False]])
    with pytest.raises(ValueError, match="is_init must be set everywhere on the first call"):
        actor(data)
    wrong = MultiStepActorWrapper(_planner(), n_steps=4)
    data["is_init"] = torch.ones(2, 1, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"the plan 'action_orig' must have n_steps=4 entries in dim 1, "
                                         r"got shape \(2, 3, 2\)"):
        wrong(data)


@pytest.mark.parametrize("mock", [False, True])
@pytest.mark.parametrize("dim", [0, 1, None])
def test_vmap_module_matches_torchrl(mock, dim):
    # cumsum over the first dim the module sees: which dim that is depends on the mapped one
    module = TensorDictModule(lambda x: x.cumsum(0), in_keys=["x"], out_keys=["y"])
    data = TensorDict(x=torch.randn(4, 3, 2), batch_size=[4, 3])
    ours = VmapModule(module, dim, mock=mock)(data.clone())["y"]
    theirs = rl.VmapModule(module, dim, mock=mock)(data.clone())["y"]
    torch.testing.assert_close(ours, theirs)
    mapped = 1 if dim is None else dim  # the default is the last batch dim
    torch.testing.assert_close(ours, data["x"].cumsum(1 - mapped))


def test_pendulum_rollout_stays_in_bounds():
    env = rlmods.GymEnv("Pendulum-v1")
    env.set_seed(0)
    torch.manual_seed(0)
    model = nn.LazyLinear(env.action_spec.shape[-1])
    policy = Actor(model, in_keys=["observation"], spec=env.action_spec, safe=True)
    with torch.no_grad():
        model(torch.zeros(3))
        model.weight.fill_(10.0)
    rollout = env.rollout(10, policy)
    assert rollout["action"].shape == (10, 1)
    assert bool((rollout["action"].abs() <= 2).all()) and bool((rollout["action"].abs() == 2).any())


@tensorclass(shadow=True)  # "chunk" shadows a TensorDict method name
class _VLAAction:
    chunk: torch.Tensor
    tokens: torch.Tensor


def _vla_actor():
    def plan(obs):  # a plan of 3 actions and one auxiliary entry, in a tensorclass
        chunk = obs[..., :2].unsqueeze(-2) + torch.arange(3.0).view(3, 1)
        return _VLAAction(chunk=chunk, tokens=obs.sum(-1, keepdim=True), batch_size=obs.shape[:-1])
    return TensorDictModule(plan, ["observation"], ["vla_action"])


def test_multistep_keeps_a_tensorclass_plan_like_torchrl():
    options = dict(n_steps=3, chunk_keys=[("vla_action", "chunk")])
    ours, theirs = MultiStepActorWrapper(_vla_actor(), **options), RlMultiStep(_vla_actor(), **options)
    data_ours, data_theirs = _data(batch=(4,)), _data(batch=(4,))
    init = torch.ones(4, 1, dtype=torch.bool)
    for step in range(5):
        data_ours["is_init"], data_theirs["is_init"] = init.clone(), init.clone()
        out_ours, out_theirs = ours(data_ours), theirs(data_theirs)
        assert type(out_ours.get("vla_action")) is type(out_theirs.get("vla_action")) is _VLAAction
        torch.testing.assert_close(out_ours["action"], out_theirs["action"])
        torch.testing.assert_close(out_ours["vla_action"].tokens, out_theirs["vla_action"].tokens)
        init = torch.tensor([[step == 1], [False], [False], [step == 2]])
    assert ours.action_keys == theirs.action_keys == ["action"]


def _fallback_cases():
    spec = Composite(a=Bounded(-0.5, 0.5, shape=(3,)), b=Unbounded(3))
    yield "actor", Actor(_net(), spec=Bounded(-0.5, 0.5, shape=(2,)), safe=True), ["action"]
    yield "two_out_keys", SafeModule(lambda x: (x, 2 * x), ["observation"], ["a", "b"], spec=spec,
                                     safe=True), ["a", "b"]
    yield "one_hot", SafeModule(_net(), ["observation"], ["action"], spec=OneHot(2),
                                safe=True), ["action"]


@pytest.mark.parametrize("case", ["actor", "two_out_keys", "one_hot"])
def test_short_path_and_fallback_agree(case):
    name, module, out_keys = next(c for c in _fallback_cases() if c[0] == case)
    data = _data(scale=10.0)  # large enough that every projection acts
    short = module(data.clone())  # the short path: call_td_module
    out = TensorDict(batch_size=[5])
    module(data.clone(), tensordict_out=out)  # tensordict's forward, then _write_to_tensordict
    tensors = module(observation=data["observation"])  # keyword tensors in, tensors out
    tensors = tensors if isinstance(tensors, tuple) else (tensors,)
    for key, tensor in zip(out_keys, tensors):
        torch.testing.assert_close(out[key], short[key])
        torch.testing.assert_close(tensor, short[key])
    first = short[out_keys[0]]
    assert bool((first.sum(-1) == 1).all()) if case == "one_hot" else bool(first.abs().max() <= 0.5)


def _plan3():
    return _planner()


def _error_cases():
    """(name, rlmods call, torchrl call): the same mistake made in both libraries."""
    def with_init(init):
        data = _data(batch=(2,))
        data["is_init"] = init
        return data

    yield ("spec keys differ from out_keys",
           lambda: Actor(_net(), spec=Composite(act=Bounded(-1.0, 1.0, shape=(2,)))),
           lambda: rl.Actor(_net(), spec=rl_data.Composite(act=rl_data.Bounded(-1.0, 1.0, shape=(2,)))))
    yield ("one spec for two out_keys",
           lambda: SafeModule(lambda x: (x, x), ["x"], ["a", "b"], spec=Unbounded(3)),
           lambda: rl.SafeModule(lambda x: (x, x), ["x"], ["a", "b"], spec=rl_data.Unbounded(3)))
    yield ("safe without a spec", lambda: Actor(_net(), safe=True),
           lambda: rl.Actor(_net(), safe=True))
    yield ("spec set to a leaf",
           lambda: setattr(Actor(_net()), "spec", Bounded(-1.0, 1.0, shape=(2,))),
           lambda: setattr(rl.Actor(_net()), "spec", rl_data.Bounded(-1.0, 1.0, shape=(2,))))
    yield ("missing in_key", lambda: Actor(_net())(TensorDict(obs=torch.zeros(3))),
           lambda: rl.Actor(_net())(TensorDict(obs=torch.zeros(3))))
    yield ("too many outputs",
           lambda: SafeModule(lambda x: (x, x, x), ["x"], ["a", "b"])(TensorDict(x=torch.zeros(3))),
           lambda: rl.SafeModule(lambda x: (x, x, x), ["x"], ["a", "b"])(TensorDict(x=torch.zeros(3))))
    yield ("tanh low differs from the spec",
           lambda: TanhModule(in_keys=["a"], spec=Bounded(-1.0, 1.0, shape=(1,)), low=-2.0),
           lambda: rl.TanhModule(in_keys=["a"], spec=rl_data.Bounded(-1.0, 1.0, shape=(1,)), low=-2.0))
    yield ("tanh high below low", lambda: TanhModule(in_keys=["a"], low=1.0, high=-1.0),
           lambda: rl.TanhModule(in_keys=["a"], low=1.0, high=-1.0))
    yield ("tanh key counts differ", lambda: TanhModule(in_keys=["a", "b"], out_keys=["c"]),
           lambda: rl.TanhModule(in_keys=["a", "b"], out_keys=["c"]))
    yield ("replan_interval above n_steps",
           lambda: MultiStepActorWrapper(_plan3(), n_steps=3, replan_interval=4),
           lambda: RlMultiStep(_plan3(), n_steps=3, replan_interval=4))
    yield ("two init keys", lambda: MultiStepActorWrapper(_plan3(), 3, init_key=["a", "b"]),
           lambda: RlMultiStep(_plan3(), 3, init_key=["a", "b"]))
    yield ("no is_init", lambda: MultiStepActorWrapper(_plan3(), 3)(_data(batch=(2,))),
           lambda: RlMultiStep(_plan3(), 3)(_data(batch=(2,))))
    partial = torch.tensor([[True], [False]])
    yield ("is_init partly set on the first call",
           lambda: MultiStepActorWrapper(_plan3(), 3)(with_init(partial)),
           lambda: RlMultiStep(_plan3(), 3)(with_init(partial)))
    every = torch.ones(2, 1, dtype=torch.bool)
    yield ("plan shorter than n_steps",
           lambda: MultiStepActorWrapper(_plan3(), 4)(with_init(every)),
           lambda: RlMultiStep(_plan3(), 4)(with_init(every)))
    yield ("plan shorter than replan_interval",
           lambda: MultiStepActorWrapper(_plan3(), replan_interval=4)(with_init(every)),
           lambda: RlMultiStep(_plan3(), replan_interval=4)(with_init(every)))


@pytest.mark.parametrize("name", [case[0] for case in _error_cases()])
def test_error_types_match_torchrl(name):
    _, ours, theirs = next(case for case in _error_cases() if case[0] == name)
    try:
        theirs()
    except Exception as err:  # whatever torchrl raises is what a torchrl user catches
        expected = type(err)
    else:
        pytest.fail(f"torchrl raised nothing for {name!r}")
    with pytest.raises(expected):
        ours()


def test_rlmods_errors_are_also_value_and_type_errors():
    with pytest.raises(InvalidValueError, match="Actor: safe=True needs a spec"):
        Actor(_net(), safe=True)
    with pytest.raises(InvalidTypeError, match="Actor: spec must be a Composite, got Bounded"):
        Actor(_net()).spec = Bounded(-1.0, 1.0, shape=(2,))


# ================================================================================================
# Tests that kill mutants mutation testing found surviving (tools/mutation.sh).
# ================================================================================================

def _mut_td(n=4):
    return TensorDict(x=torch.arange(2.0 * n).view(n, 2), batch_size=[n])


# ---- unbatched_spec -------------------------------------------------------------------------

def test_unbatched_spec_drops_a_leading_dim_of_size_one():
    assert unbatched_spec(Bounded(-1.0, 1.0, shape=(1, 2))).shape == (2,)


# ---- SafeModule: outputs as a dict, inplace, the fallback's writer ---------------------------

def test_module_returning_a_dict_is_read_by_out_key():
    def fn(x):
        return {"y": x + 1, "z": 2 * x}
    ours = SafeModule(fn, ["x"], ["z", "y"])(_mut_td())
    ref = TensorDictModule(fn, ["x"], ["z", "y"])(_mut_td())
    assert_close(ours["y"], ref["y"])
    assert_close(ours["z"], ref["z"])


@pytest.mark.parametrize("inplace", [False, "empty"])
def test_inplace_false_and_empty_match_tensordict(inplace):
    td = _mut_td()
    ours = SafeModule(lambda x: x + 1, ["x"], ["y"], inplace=inplace)(td)
    ref = TensorDictModule(lambda x: x + 1, ["x"], ["y"], inplace=inplace)(_mut_td())
    assert ours is not td
    assert "y" not in td.keys()
    assert ours.batch_size == ref.batch_size
    assert set(ours.keys()) == set(ref.keys()) == {"y"}


def test_fallback_error_for_too_many_outputs_names_the_module():
    module = SafeModule(lambda x: (x, x), ["x"], ["y"])
    with pytest.raises(ValueError, match=r"^SafeModule: the module must return one tensor per "
                                         r"out_key \(1: \['y'\]\), got 2\.$"):
        module(_mut_td(), tensordict_out=TensorDict({}, [4]))


def test_fallback_skips_an_ignored_output_and_writes_the_rest():
    module = SafeModule(lambda x: (x - 1, x + 1), ["x"], ["_", "y"])
    out = module(_mut_td(), tensordict_out=TensorDict({}, [4]))
    assert set(out.keys()) == {"y"}
    assert_close(out["y"], _mut_td()["x"] + 1)


def test_fallback_does_not_project_without_safe():
    spec = Bounded(-1.0, 1.0, shape=(2,))
    out = SafeModule(lambda x: x * 10, ["x"], ["y"], spec=spec)(
        _mut_td(), tensordict_out=TensorDict({}, [4]))
    assert out["y"].abs().max() > 1
    out = SafeModule(lambda x: x * 10, ["x"], ["y"], spec=spec, safe=True)(
        _mut_td(), tensordict_out=TensorDict({}, [4]))
    assert out["y"].abs().max() <= 1


def test_short_path_does_not_project_without_safe():
    spec = Bounded(-1.0, 1.0, shape=(2,))
    out = SafeModule(lambda x: x * 10, ["x"], ["y"], spec=spec)(_mut_td())
    assert out["y"].abs().max() > 1
    out = SafeModule(lambda x: x * 10, ["x"], ["y"], spec=spec, safe=True)(_mut_td())
    assert out["y"].abs().max() <= 1


def test_fallback_writes_non_tensor_outputs_as_tensordict_does():
    def fn(x):
        return {"a": x + 1}
    ours = SafeModule(fn, ["x"], ["y"])(_mut_td(), tensordict_out=TensorDict({}, [4]))
    ref = TensorDictModule(fn, ["x"], ["y"])(_mut_td(), tensordict_out=TensorDict({}, [4]))
    assert_close(ours["y", "a"], ref["y", "a"])


def test_random_sample_draws_from_the_spec():
    spec = Bounded(-1.0, 1.0, shape=(2,))
    module = SafeModule(lambda x: x, ["x"], ["y"], spec=spec)
    out = module.random_sample(_mut_td())
    assert out["y"].shape == (4, 2)
    assert spec.is_in(out["y"])


@pytest.mark.parametrize("how", ["positional", "dtype_keyword"])
def test_to_dtype_moves_the_spec_and_the_weights(how):
    module = SafeModule(nn.Linear(2, 2), ["x"], ["y"], spec=Unbounded(2))
    result = module.to(torch.float64) if how == "positional" else module.to(dtype=torch.float64)
    assert result is module
    assert module.spec["y"].dtype == torch.float64
    assert module.module.weight.dtype == torch.float64


def test_to_device_keyword_moves_the_spec_and_the_weights():
    module = SafeModule(nn.Linear(2, 2), ["x"], ["y"], spec=Unbounded(2))
    module.to(device="meta")
    assert module.spec["y"].device.type == "meta"
    assert module.module.weight.device.type == "meta"


# ---- SafeSequential --------------------------------------------------------------------------

def test_sequential_forwards_partial_tolerant_and_inplace():
    first = SafeModule(lambda x: x + 1, ["x"], ["h"])
    second = SafeModule(lambda h: 2 * h, ["h"], ["y"])
    assert SafeSequential(first, second).partial_tolerant is False
    assert SafeSequential(first, second, partial_tolerant=True).partial_tolerant is True
    from tensordict.nn import TensorDictSequential
    ref_first = TensorDictModule(lambda x: x + 1, ["x"], ["h"])
    ref_second = TensorDictModule(lambda h: 2 * h, ["h"], ["y"])
    td, ref_td = _mut_td(), _mut_td()
    out = SafeSequential(first, second, inplace=False)(td)
    ref = TensorDictSequential(ref_first, ref_second, inplace=False)(ref_td)
    assert out is not td
    assert out.batch_size == ref.batch_size
    assert set(out.keys()) == set(ref.keys())
    assert set(td.keys()) == set(ref_td.keys())
    assert_close(out["y"], 2 * (_mut_td()["x"] + 1))


# ---- TanhModule ----------------------------------------------------------------------------------

def test_tanh_module_spec_error_names_the_module():
    spec = Composite({"a": Bounded(-1.0, 1.0, shape=(2,)), "other": Unbounded(2)})
    with pytest.raises(ValueError, match=r"^TanhModule: spec keys must be among the out_keys"):
        TanhModule(in_keys=["a"], spec=spec)


def test_tanh_module_accepts_equal_bounds_as_torchrl():
    td = TensorDict(a=torch.tensor([-3.0, 0.0, 3.0]))
    ours = TanhModule(in_keys=["a"], low=1.0, high=1.0)(td.clone())["a"]
    theirs = tm.TanhModule(in_keys=["a"], low=1.0, high=1.0)(td.clone())["a"]
    assert_close(ours, theirs)
    assert_close(ours, torch.ones(3))


def test_tanh_module_buffer_names_match_torchrl_for_nested_keys():
    ours = TanhModule(in_keys=[("a", "b"), "act"])
    theirs = tm.TanhModule(in_keys=[("a", "b"), "act"])
    assert list(ours.state_dict()) == list(theirs.state_dict())
    td = TensorDict({"a": {"b": torch.tensor([0.0, 100.0])}, "act": torch.tensor([-100.0])}, [])
    out = ours(td)
    assert_close(out["a", "b"], torch.tensor([0.0, 1.0]))


# ---- MultiStepActorWrapper: key conventions, as torchrl --------------------------------------

_MUT_KEY_CASES = [
    dict(out=["action"]),
    dict(out=[("agents", "action")]),
    dict(out=[("a", "b", "action")]),
    dict(out=["move_chunk"]),
    dict(out=[("agents", "move_chunk")]),
    dict(out=[("a", "b", "move_chunk")]),
    dict(out=[("vla_action", "chunk")]),
    dict(out=[("x", "vla_action", "chunk")]),
    dict(out=[("agents", "action"), ("agents", "hidden")]),
    dict(out=["plan"], chunk_keys="plan"),
    dict(out=["plan"], chunk_keys=["plan"]),
    dict(out=["action_chunk"], chunk_keys="action_chunk"),
    dict(out=["action"], action_keys="action"),
    dict(out=["action"], init_key=("a", "b", "is_init")),
    dict(out=["a_chunk", "b_chunk"]),
]


def _mut_wrapper(lib, case):
    actor = TensorDictModule(lambda x: x, ["observation"], case["out"])
    kwargs = {k: v for k, v in case.items() if k != "out"}
    return lib.MultiStepActorWrapper(actor, n_steps=3, **kwargs)


@pytest.mark.parametrize("case", _MUT_KEY_CASES, ids=str)
def test_multistep_keys_match_torchrl(case):
    ours, theirs = _mut_wrapper(__import__("rlmods"), case), _mut_wrapper(tm, case)
    assert ours.action_keys == theirs.action_keys
    assert list(ours.chunk_keys) == list(theirs.chunk_keys)
    assert sorted(map(str, ours.out_keys)) == sorted(map(str, theirs.out_keys))
    assert sorted(map(str, ours.in_keys)) == sorted(map(str, theirs.in_keys))


def test_multistep_explicit_action_keys_are_used():
    actor = TensorDictModule(lambda x: (x, x), ["observation"], ["action", "other"])
    assert MultiStepActorWrapper(actor, n_steps=3, action_keys=["other"]).action_keys == ["other"]


def _mut_planner():
    return TensorDictModule(lambda obs: obs.unsqueeze(-2) + torch.arange(3.0).view(3, 1),
                            in_keys=["observation"], out_keys=["action"])


def _mut_rollout(wrapper, steps, init_key="is_init"):
    td = TensorDict({"observation": torch.zeros(1, 1), init_key: torch.ones(1, 1, dtype=torch.bool)},
                    [1])
    actions = []
    for _ in range(steps):
        actions.append(wrapper(td)["action"].item())
        td[init_key] = torch.zeros(1, 1, dtype=torch.bool)
    return actions


def test_multistep_replan_interval_one_replans_every_step():
    assert _mut_rollout(MultiStepActorWrapper(_mut_planner(), n_steps=3, replan_interval=1), 3) == [0.0] * 3


def test_multistep_replan_interval_equal_to_the_plan_length():
    wrapper = MultiStepActorWrapper(_mut_planner(), replan_interval=3)
    assert _mut_rollout(wrapper, 4) == [0.0, 1.0, 2.0, 0.0]


def test_multistep_custom_init_key():
    wrapper = MultiStepActorWrapper(_mut_planner(), n_steps=3, init_key="start")
    assert wrapper.init_key == "start"
    assert _mut_rollout(wrapper, 4, init_key="start") == [0.0, 1.0, 2.0, 0.0]


def test_multistep_plan_keys_length_mismatch_message():
    actor = TensorDictModule(lambda x: x, ["observation"], ["action"])
    with pytest.raises(ValueError, match=r"^MultiStepActorWrapper: action_keys and chunk_keys must "
                                         r"have the same length, got \['action'\] and "
                                         r"\['a_chunk', 'b_chunk'\]\.$"):
        MultiStepActorWrapper(actor, action_keys=["action"], chunk_keys=["a_chunk", "b_chunk"])


def test_multistep_init_key_list_message():
    with pytest.raises(ValueError, match=r"^MultiStepActorWrapper: init_key must be a single key, "
                                         r"got \['a', 'b'\]\.$"):
        MultiStepActorWrapper(_mut_planner(), init_key=["a", "b"])


def test_multistep_missing_init_key_message():
    wrapper = MultiStepActorWrapper(_mut_planner(), n_steps=3)
    with pytest.raises(KeyError, match=r"InitTracker transform"):
        wrapper(TensorDict({"observation": torch.zeros(1, 1)}, [1]))


def test_multistep_partial_first_is_init_message():
    wrapper = MultiStepActorWrapper(_mut_planner(), n_steps=3)
    td = TensorDict({"observation": torch.zeros(2, 1),
                     "is_init": torch.tensor([[True], [False]])}, [2])
    with pytest.raises(ValueError, match=r"^MultiStepActorWrapper: is_init must be set everywhere "
                                         r"on the first call \(no cached plan under "
                                         r"'action_orig'\), got it partially set\.$"):
        wrapper(td)


def test_multistep_wrong_plan_length_message():
    wrapper = MultiStepActorWrapper(_mut_planner(), n_steps=4)
    td = TensorDict({"observation": torch.zeros(1, 1), "is_init": torch.ones(1, 1, dtype=torch.bool)},
                    [1])
    with pytest.raises(ValueError, match=r"^MultiStepActorWrapper: the plan 'action_orig' must "
                                         r"have n_steps=4 entries in dim 1, got shape "
                                         r"\(1, 3, 1\)\.$"):
        wrapper(td)


def test_multistep_plan_shorter_than_replan_interval_message():
    wrapper = MultiStepActorWrapper(_mut_planner(), replan_interval=4)
    td = TensorDict({"observation": torch.zeros(1, 1), "is_init": torch.ones(1, 1, dtype=torch.bool)},
                    [1])
    with pytest.raises(ValueError, match=r"^MultiStepActorWrapper: the plan 'action_orig' must "
                                         r"have at least replan_interval=4 steps, got 3\.$"):
        wrapper(td)


def test_multistep_deeply_nested_vla_chunk_replays_the_plan():
    actor = TensorDictModule(lambda obs: obs.unsqueeze(-2) + torch.arange(3.0).view(3, 1),
                             in_keys=["observation"], out_keys=[("x", "vla_action", "chunk")])
    results = []
    for lib in (__import__("rlmods"), tm):
        wrapper = lib.MultiStepActorWrapper(actor, n_steps=3)
        td = TensorDict({"observation": torch.zeros(2, 1),
                         "is_init": torch.ones(2, 1, dtype=torch.bool)}, [2])
        steps = []
        for _ in range(4):
            steps.append(wrapper(td)["action"].clone())
            td["is_init"] = torch.zeros(2, 1, dtype=torch.bool)
        results.append(torch.stack(steps))
    assert_close(results[0], results[1])
    assert results[0][:, 0, 0].tolist() == [0.0, 1.0, 2.0, 0.0]


# ---- VmapModule ---------------------------------------------------------------------------------

def test_vmap_module_mock_default_and_mock_():
    def not_vmappable(x):
        return x * 2 if x.sum().item() >= 0 else x  # .item(): fails under torch.vmap
    inner = TensorDictModule(not_vmappable, in_keys=["x"], out_keys=["y"])
    module = VmapModule(inner, 0)
    assert module.mock is False
    with pytest.raises(RuntimeError, match=r"item"):
        module(_mut_td())
    module.mock_()
    assert module.mock is True
    assert_close(module(_mut_td())["y"], 2 * _mut_td()["x"])
    module.mock_(False)
    assert module.mock is False


def test_multistep_two_nested_chunk_containers_match_torchrl():
    def plan(obs):
        return obs.unsqueeze(-2) + torch.arange(3.0).view(3, 1)
    actor = TensorDictModule(lambda o: (plan(o), 10 * plan(o)), ["observation"],
                             [("a", "move_chunk"), ("b", "turn_chunk")])
    results = []
    for lib in (__import__("rlmods"), tm):
        wrapper = lib.MultiStepActorWrapper(actor, n_steps=3)
        td = TensorDict(observation=torch.zeros(2, 1), is_init=torch.ones(2, 1, dtype=torch.bool),
                        batch_size=[2])
        steps = []
        for _ in range(4):
            td = wrapper(td)
            steps.append(torch.stack([td["a", "move"], td["b", "turn"]]))
            td["is_init"] = torch.zeros(2, 1, dtype=torch.bool)
        results.append(torch.stack(steps))
    assert_close(results[0], results[1])
    assert results[0][:, 1, 0, 0].tolist() == [0.0, 10.0, 20.0, 0.0]


# ---- the call plan: DirectCall, the direct steps of sequences, read_entry / write_entry --------

def _plan_cases():
    from rlmods import DistributionalQValueActor, EGreedyModule, QValueActor
    yield "sequence", lambda: SafeSequential(SafeModule(_net(), ["observation"], ["hidden"]),
                                             Actor(nn.Linear(2, 1), in_keys=["hidden"]))
    yield "qvalue", lambda: QValueActor(_net(), spec=rlmods.Categorical(2))
    yield "egreedy", lambda: SafeSequential(QValueActor(_net(), spec=OneHot(2)),
                                            EGreedyModule(OneHot(2), 0.5))
    yield "distributional", lambda: DistributionalQValueActor(
        nn.Sequential(_net(), nn.Linear(2, 6), nn.Unflatten(-1, (3, 2))),
        support=torch.linspace(-1.0, 1.0, 3), spec=rlmods.Categorical(2))


@pytest.mark.parametrize("case", [name for name, _ in _plan_cases()])
def test_sequence_direct_path_and_fallback_agree(case, monkeypatch):
    make = dict(_plan_cases())[case]
    module, data = make(), _data(batch=(6,))
    torch.manual_seed(0)
    general = module(data.clone(), tensordict_out=TensorDict(batch_size=[6]))  # the fallback
    monkeypatch.setattr(type(module), "_fallback", lambda *args, **kwargs: 1 / 0)
    torch.manual_seed(0)
    direct = module(data.clone())  # never reaches _fallback
    assert set(general.keys(True, True)) == set(module.out_keys)
    for key in module.out_keys:
        assert_close(direct[key], general[key], rtol=0, atol=0)


def test_a_sequence_decides_its_steps_at_construction():
    plain = TensorDictModule(nn.Linear(3, 2), ["observation"], ["hidden"])
    keyword = TensorDictModule(nn.Linear(3, 2), ["observation"], ["other"], method="forward")
    actor = Actor(nn.Linear(2, 1), in_keys=["hidden"])
    seq = SafeSequential(plain, keyword, actor)
    steps = [step for _, step in seq._steps]
    assert steps[0].func is rlmods.actors.call_td_module and steps[1] is None
    assert steps[2] == actor._forward_td
    out = seq(_data())
    assert_close(out["action"], actor.module(plain.module(_data()["observation"])))


def test_a_step_with_hooks_is_called_with_its_hooks():
    first = SafeModule(_net(), ["observation"], ["hidden"])
    seq = SafeSequential(first, Actor(nn.Linear(2, 1), in_keys=["hidden"]))
    seen = []
    first.register_forward_hook(lambda module, args, out: seen.append("post"))
    first.register_forward_pre_hook(lambda module, args: seen.append("pre"))
    seq(_data())
    assert seen == ["pre", "post"]


def test_select_out_keys_moves_a_sequence_to_the_fallback():
    seq = SafeSequential(SafeModule(_net(), ["observation"], ["hidden"]),
                         Actor(nn.Linear(2, 1), in_keys=["hidden"]))
    assert seq._direct
    seq.select_out_keys("action")
    out = seq(_data())
    assert not seq._direct and "hidden" not in out.keys() and "action" in out.keys()


@pytest.mark.parametrize("kwargs", [{"inplace": False}, {"inplace": "empty"}])
def test_a_module_whose_configuration_needs_the_fallback_takes_it(kwargs):
    module = SafeModule(_net(), ["observation"], ["action"], **kwargs)
    data = _data()
    out = module(data)
    assert not module._direct and out is not data and "observation" not in out.keys()
    assert_close(out["action"], module.module(data["observation"]))


def test_each_module_runs_its_own_copy_of_forward_and_so_do_its_copies(tmp_path):
    import copy
    first, second = Actor(_net()), Actor(_net())
    code = type(first).forward.__code__
    assert first.forward.__code__ is not code and first.forward.__code__ == code
    assert first.forward.__code__ is not second.forward.__code__
    for clone in (copy.copy(first), copy.deepcopy(first)):
        assert clone.forward.__self__ is clone and clone.forward.__code__ is not code
    torch.save(first, tmp_path / "actor.pt")
    loaded = torch.load(tmp_path / "actor.pt", weights_only=False)
    assert loaded.forward.__self__ is loaded
    assert_close(loaded(_data())["action"], first(_data())["action"])


def test_write_entry_checks_what_set_checks():
    from rlmods.actors import read_entry, write_entry
    data = TensorDict(observation=torch.zeros(4, 3), batch_size=[4])
    write_entry(data, "action", torch.ones(4, 2))
    write_entry(data, ("agent", "action"), torch.ones(4, 2))  # nested: through set
    assert data["action"].shape == (4, 2) and data["agent", "action"].shape == (4, 2)
    with pytest.raises(RuntimeError, match="batch dimension mismatch"):
        write_entry(data, "action", torch.ones(3, 2))
    locked = data.clone().lock_()
    with pytest.raises(RuntimeError, match="locked"):
        write_entry(locked, "action", torch.ones(4, 2))
    on_meta = TensorDict(batch_size=[4], device="meta")
    write_entry(on_meta, "action", torch.ones(4, 2))  # cast to the tensordict's device by set
    assert on_meta["action"].device.type == "meta"
    assert read_entry(data, ("agent", "action"), None) is data["agent", "action"]
    with pytest.raises(KeyError, match="Actor: expected key .*missing.* in the input tensordict"):
        read_entry(data, "missing", Actor(_net()))
