"""Tests for rlmods/probabilistic.py: keys, exploration types, errors, and torchrl as the oracle."""

import inspect

import pytest
import torch
import torchrl.data as rl_data
import torchrl.modules as rl
from tensordict import TensorDict
from tensordict.nn import CompositeDistribution, InteractionType, NormalParamExtractor, TensorDictModule
from torch import nn
from torch import distributions as D
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Normal

import rlmods
from rlmods import (Bounded, Categorical, ExplorationType, OneHot, OneHotCategorical, ProbabilisticActor,
                    SafeProbabilisticModule, SafeProbabilisticTensorDictSequential, TanhNormal,
                    set_exploration_type)
from tensordict.nn import ProbabilisticTensorDictModule
from tensordict.nn import set_interaction_type
from torch.testing import assert_close
from rlmods import Composite

NAMES = ["SafeProbabilisticModule", "SafeProbabilisticTensorDictSequential", "ProbabilisticActor"]


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torchrl(name):
    def params(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    theirs = params(getattr(rl, name))
    ours = params(getattr(rlmods, name))
    if name == "SafeProbabilisticModule":  # the default distribution is each library's own Delta
        theirs = [p for p in theirs if p[0] != "distribution_class"]
        ours = [p for p in ours if p[0] != "distribution_class"]
    assert ours == theirs


def test_default_interaction_type_is_deterministic_as_documented():
    default = inspect.signature(SafeProbabilisticModule).parameters["default_interaction_type"].default
    assert default is InteractionType.DETERMINISTIC
    assert "Defaults to ``InteractionType.DETERMINISTIC``" in rl.ProbabilisticActor.__doc__


def _net(seed=0, action_dim=2):
    torch.manual_seed(seed)
    return TensorDictModule(nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 2 * action_dim),
                                          NormalParamExtractor()),
                            in_keys=["observation"], out_keys=["loc", "scale"])


def _data(batch=5, seed=1):
    torch.manual_seed(seed)
    return TensorDict(observation=torch.randn(batch, 3), batch_size=[batch])


def _actors(**kwargs):
    theirs = rl.ProbabilisticActor(_net(0), in_keys=["loc", "scale"], distribution_class=rl.TanhNormal,
                                   distribution_kwargs={"low": -1.0, "high": 1.0}, **kwargs)
    ours = ProbabilisticActor(_net(1), in_keys=["loc", "scale"], distribution_class=TanhNormal,
                              distribution_kwargs={"low": -1.0, "high": 1.0}, **kwargs)
    ours.load_state_dict(theirs.state_dict())  # checkpoint compatibility
    return ours, theirs


@pytest.mark.parametrize("mode", [ExplorationType.DETERMINISTIC, ExplorationType.RANDOM])
def test_tanh_normal_actor_matches_torchrl(mode):
    ours, theirs = _actors(return_log_prob=True)
    outputs = []
    for actor in (ours, theirs):
        torch.manual_seed(3)
        with set_exploration_type(mode):
            outputs.append(actor(_data()))
    for key in ("loc", "scale", "action", "action_log_prob"):
        torch.testing.assert_close(outputs[0][key], outputs[1][key], rtol=1e-4, atol=1e-4)
    assert "sample_log_prob" not in outputs[0].keys()


def test_log_prob_of_stored_action_matches_torchrl():
    ours, theirs = _actors()
    data = _data()
    with set_exploration_type(ExplorationType.RANDOM):
        action = ours(data.clone())["action"]
    data["action"] = action
    torch.testing.assert_close(ours.get_dist(data.clone()).log_prob(action),
                               theirs.get_dist(data.clone()).log_prob(action), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", [ExplorationType.MODE, ExplorationType.MEAN])
def test_mode_and_mean_do_not_raise_better_than_torchrl(mode):
    ours, theirs = _actors()
    with set_exploration_type(mode):
        action = ours(_data())["action"]
        assert action.shape == (5, 2) and bool((action.abs() <= 1).all())
        if mode is ExplorationType.MODE:
            with pytest.raises(RuntimeError, match="has not analytical mode"):  # torchrl raises
                theirs(_data())
        else:  # torchrl's mean raises inside and tensordict falls back to 1000 draws
            torch.testing.assert_close(action, theirs(_data())["action"], atol=0.1, rtol=0.0)


def test_exploration_type_decides_the_action():
    module = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"], distribution_class=Normal)
    data = TensorDict(loc=torch.zeros(1000), scale=torch.ones(1000), batch_size=[1000])
    assert module(data.clone())["action"].eq(0).all()  # DETERMINISTIC by default: the mean
    for mode in (ExplorationType.MODE, ExplorationType.MEAN, ExplorationType.DETERMINISTIC):
        with set_exploration_type(mode):
            assert module(data.clone())["action"].eq(0).all()
    with set_exploration_type(ExplorationType.RANDOM):
        sample = module(data.clone())["action"]
    assert 0.8 < sample.std().item() < 1.2
    random_default = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"],
                                             distribution_class=Normal,
                                             default_interaction_type=InteractionType.RANDOM)
    assert random_default(data.clone())["action"].std().item() > 0.8


def test_safe_projects_samples_like_torchrl():
    kwargs = dict(in_keys=["loc", "scale"], out_keys=["action"], distribution_class=Normal, safe=True,
                  default_interaction_type=InteractionType.RANDOM)
    ours = SafeProbabilisticModule(spec=Bounded(-1.0, 1.0, shape=()), **kwargs)
    theirs = rl.SafeProbabilisticModule(spec=rl_data.Bounded(-1.0, 1.0, shape=()), **kwargs)
    data = TensorDict(loc=torch.zeros(10), scale=torch.full((10,), 10.0), batch_size=[10])
    torch.manual_seed(0)
    mine = ours(data.clone())["action"]
    torch.manual_seed(0)
    torch.testing.assert_close(mine, theirs(data.clone())["action"])
    assert bool((mine.abs() <= 1).all()) and bool((mine.abs() == 1).any())


def test_safe_with_batched_spec_better_than_torchrl():
    ours = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"], distribution_class=Normal,
                                   spec=Bounded(-1.0, 1.0, shape=(4, 1)), safe=True,
                                   default_interaction_type=InteractionType.RANDOM)
    data = TensorDict(loc=torch.zeros(10, 1), scale=torch.full((10, 1), 10.0), batch_size=[10])
    assert bool((ours(data)["action"].abs() <= 1).all())


def test_nested_keys():
    net = TensorDictModule(nn.Sequential(nn.Linear(3, 4), NormalParamExtractor()),
                           in_keys=[("agents", "observation")], out_keys=[("agents", "loc"), ("agents", "scale")])
    actor = ProbabilisticActor(net, in_keys=[("agents", "loc"), ("agents", "scale")],
                               out_keys=[("agents", "action")], distribution_class=TanhNormal,
                               spec=Bounded(-1.0, 1.0, shape=(3, 2)), safe=True, return_log_prob=True)
    data = TensorDict({("agents", "observation"): torch.randn(5, 3, 3)}, batch_size=[5])
    with set_exploration_type(ExplorationType.RANDOM):
        data = actor(data)
    assert data["agents", "action"].shape == (5, 3, 2)
    assert data["agents", "action_log_prob"].shape == (5, 3)
    assert ("agents", "action") in list(actor.spec.keys(True, True))


def test_reference_page_example_sequence_and_actor():
    from tensordict.nn import TensorDictSequential
    env = rlmods.GymEnv("Pendulum-v1")
    action_spec = env.action_spec
    model = nn.Sequential(nn.LazyLinear(action_spec.shape[-1] * 2), NormalParamExtractor())
    model = TensorDictModule(model, in_keys=["observation"], out_keys=["loc", "scale"])
    prob_module = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"],
                                          distribution_class=Normal, return_log_prob=True, spec=action_spec)
    rollout = env.rollout(3, TensorDictSequential(model, prob_module))
    assert rollout["action_log_prob"].shape == (3, 1)  # Normal: one log_prob per action entry
    policy = ProbabilisticActor(model, in_keys=["loc", "scale"], out_keys=["action"], distribution_class=Normal,
                                return_log_prob=True, spec=action_spec)
    assert env.rollout(3, policy)["action"].shape == (3, 1)


def test_kwargs_call_and_tensordict_out_fall_back_to_tensordict():
    ours, _ = _actors()
    data = _data()
    out = ours(data.clone(), tensordict_out=TensorDict(batch_size=[5]))
    assert "action" in out.keys()


def test_one_hot_spec_with_categorical_distribution_error():
    with pytest.raises(ValueError, match=r"SafeProbabilisticModule: the spec of 'action' is OneHot \(one-hot "
                                         r"values\), so distribution_class must write one-hot samples "
                                         r"\(OneHotCategorical, .*got Categorical \(integer indices\)"):
        SafeProbabilisticModule(in_keys=["logits"], out_keys=["action"], spec=OneHot(3),
                                distribution_class=TorchCategorical)


def test_categorical_spec_with_one_hot_distribution_error():
    with pytest.raises(ValueError, match=r"the spec of 'action' is Categorical \(integer indices\), so "
                                         r"distribution_class must write indices .*got OneHotCategorical"):
        ProbabilisticActor(_net(), in_keys=["logits"], spec=Categorical(3), distribution_class=OneHotCategorical)


def test_continuous_spec_with_discrete_distribution_error():
    with pytest.raises(ValueError, match=r"the spec of 'action' is continuous \(Bounded\), so distribution_class "
                                         r"must be continuous, got Categorical"):
        ProbabilisticActor(_net(), in_keys=["logits"], spec=Bounded(-1.0, 1.0, shape=(2,)),
                           distribution_class=TorchCategorical)


def test_matching_discrete_specs_are_accepted():
    logits = TensorDict(logits=torch.randn(4, 3), batch_size=[4])
    one_hot = SafeProbabilisticModule(in_keys=["logits"], out_keys=["action"], spec=OneHot(3),
                                      distribution_class=OneHotCategorical)
    index = SafeProbabilisticModule(in_keys=["logits"], out_keys=["action"], spec=Categorical(3),
                                    distribution_class=TorchCategorical)
    with set_exploration_type(ExplorationType.MODE):
        assert one_hot(logits.clone())["action"].shape == (4, 3)
        assert index(logits.clone())["action"].shape == (4,)


def test_spec_out_keys_mismatch_error():
    with pytest.raises(ValueError, match=r"SafeProbabilisticModule: spec keys must be among the out_keys \['action'\]"):
        ProbabilisticActor(_net(), in_keys=["loc", "scale"], spec=rlmods.Composite(act=Bounded(-1.0, 1.0, (2,))))


def test_safe_without_spec_error():
    with pytest.raises(ValueError, match="SafeProbabilisticModule: safe=True needs a spec"):
        SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"], safe=True)


def test_missing_parameter_key_error():
    module = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"], distribution_class=Normal)
    with pytest.raises(KeyError, match=r"SafeProbabilisticModule: expected key 'scale' in the input tensordict"):
        module(TensorDict(loc=torch.zeros(2)))


def test_no_from_any_on_the_hot_path(monkeypatch):
    ours, _ = _actors(return_log_prob=True)

    def boom(*args, **kwargs):
        raise AssertionError("TensorDict.from_any was called")

    monkeypatch.setattr(TensorDict, "from_any", boom)
    with set_exploration_type(ExplorationType.RANDOM):
        assert ours(_data())["action"].shape == (5, 2)


def test_safe_sequence_spec():
    actor = ProbabilisticActor(_net(), in_keys=["loc", "scale"], spec=Bounded(-1.0, 1.0, shape=(2,)),
                               distribution_class=TanhNormal)
    assert isinstance(actor, SafeProbabilisticTensorDictSequential)
    assert actor.spec["action"] == Bounded(-1.0, 1.0, shape=(2,)) and actor.spec["loc"] is None


# ----------------------------------------------------------------------------- issue 9
class _CompositeNet(nn.Module):
    def forward(self, x):
        return x[..., :2], x[..., 2:4].exp(), x[..., 4:7]


def _composite_actor(lib, **kwargs):
    net = TensorDictModule(_CompositeNet(), in_keys=["observation"],
                           out_keys=[("params", "cont", "loc"), ("params", "cont", "scale"),
                                     ("params", "disc", "logits")])
    kwargs = {"distribution_kwargs": {"distribution_map": {"cont": Normal, "disc": TorchCategorical}},
              **kwargs}
    return lib.ProbabilisticActor(net, in_keys=["params"], distribution_class=CompositeDistribution,
                                  return_log_prob=True, **kwargs)


@pytest.mark.parametrize("name_map", [None, {"cont": ("agent", "move"), "disc": "pick"}])
def test_composite_distribution_default_out_keys_match_torchrl(name_map):
    extra = {} if name_map is None else {"name_map": name_map}
    kwargs = {"distribution_kwargs": {"distribution_map": {"cont": Normal, "disc": TorchCategorical},
                                      **extra}}
    ours, theirs = _composite_actor(rlmods, **kwargs), _composite_actor(rl, **kwargs)
    assert ours.out_keys == theirs.out_keys
    data = TensorDict(observation=torch.randn(4, 7), batch_size=[4])
    outputs = []
    for actor in (ours, theirs):
        torch.manual_seed(0)
        with set_exploration_type(ExplorationType.RANDOM):
            outputs.append(actor(data.clone()))
    assert set(outputs[0].keys(True, True)) == set(outputs[1].keys(True, True))
    for key in outputs[1].keys(True, True):
        torch.testing.assert_close(outputs[0][key], outputs[1][key])
    assert "action" not in outputs[0].keys()


def test_composite_distribution_without_map_error_type_matches_torchrl():
    with pytest.raises(KeyError) as theirs:
        _composite_actor(rl, distribution_kwargs={})
    with pytest.raises(KeyError, match="ProbabilisticActor: a CompositeDistribution needs "
                                       "'distribution_map' in distribution_kwargs") as ours:
        _composite_actor(rlmods, distribution_kwargs={})
    assert isinstance(ours.value, type(theirs.value))


@pytest.mark.parametrize("dist_class,in_key", [(TorchCategorical, "logits"), (D.Bernoulli, "logits"),
                                               (D.OneHotCategorical, "logits")])
def test_discrete_torch_distribution_without_exploration_type_uses_the_mode_like_torchrl(dist_class,
                                                                                        in_key):
    # No exploration type set: DETERMINISTIC; a torch distribution has no deterministic_sample
    # and a discrete one's mean is not an action (Categorical.mean is NaN): both use the mode.
    kwargs = dict(in_keys=[in_key], out_keys=["action"], distribution_class=dist_class,
                  return_log_prob=True)
    ours, theirs = SafeProbabilisticModule(**kwargs), rl.SafeProbabilisticModule(**kwargs)
    torch.manual_seed(0)
    data = TensorDict(logits=torch.randn(6, 4), batch_size=[6])
    mine = ours(data.clone())
    reference = theirs(data.clone())
    assert not mine["action"].isnan().any()
    torch.testing.assert_close(mine["action"], reference["action"])
    torch.testing.assert_close(mine["action"], dist_class(logits=data["logits"]).mode)
    torch.testing.assert_close(mine["action_log_prob"], reference["action_log_prob"])


def test_continuous_torch_distribution_without_exploration_type_uses_the_mean_like_torchrl():
    kwargs = dict(in_keys=["concentration1", "concentration0"], out_keys=["action"],
                  distribution_class=D.Beta)
    ours, theirs = SafeProbabilisticModule(**kwargs), rl.SafeProbabilisticModule(**kwargs)
    data = TensorDict(concentration1=torch.rand(5) + 0.5, concentration0=torch.rand(5) + 0.5,
                      batch_size=[5])
    torch.testing.assert_close(ours(data.clone())["action"], theirs(data.clone())["action"])


def _safe_module(lib, specs):
    return lib.SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"],
                                       distribution_class=Normal, spec=specs.Bounded(-1.0, 1.0, shape=()),
                                       safe=True, default_interaction_type=InteractionType.RANDOM,
                                       return_log_prob=True)


def test_safe_fallback_paths_give_the_short_path_output():
    module = _safe_module(rlmods, rlmods)
    loc, scale = torch.linspace(-2, 2, 10), torch.full((10,), 10.0)
    calls = {
        "td": lambda: module(TensorDict(loc=loc, scale=scale, batch_size=[10])),
        "tensordict_out": lambda: module(TensorDict(loc=loc, scale=scale, batch_size=[10]),
                                         tensordict_out=TensorDict(batch_size=[10])),
        "kwargs": lambda: dict(zip(["action", "action_log_prob"], module(loc=loc, scale=scale))),
    }
    outputs = {}
    for name, call in calls.items():
        torch.manual_seed(0)
        outputs[name] = call()
    action = outputs["td"]["action"]
    assert bool((action.abs() <= 1).all()) and bool((action.abs() == 1).any())  # projected
    for name in ("tensordict_out", "kwargs"):
        torch.testing.assert_close(outputs[name]["action"], action)
        torch.testing.assert_close(outputs[name]["action_log_prob"], outputs["td"]["action_log_prob"])


@pytest.mark.torchrl_bug
def test_safe_keyword_call_fails_torchrl():
    # torchrl's projection hook expects a tensordict; called with tensors it gets a tuple.
    module = _safe_module(rl, rl_data)
    with pytest.raises(AttributeError, match="'tuple' object has no attribute 'get'"):
        module(loc=torch.zeros(3), scale=torch.ones(3))


def _error_cases(lib, specs):
    net = _net()
    return {
        "spec_keys_are_not_out_keys": lambda: lib.ProbabilisticActor(
            net, in_keys=["loc", "scale"], spec=specs.Composite(act=specs.Bounded(-1.0, 1.0, (2,)))),
        "safe_without_spec": lambda: lib.SafeProbabilisticModule(
            in_keys=["loc", "scale"], out_keys=["action"], safe=True),
        "one_spec_two_out_keys": lambda: lib.SafeProbabilisticModule(
            in_keys=["logits"], out_keys=["action", "other"], spec=specs.Categorical(3),
            distribution_class=TorchCategorical),
        "composite_without_map": lambda: lib.ProbabilisticActor(
            net, in_keys=["params"], distribution_class=CompositeDistribution, distribution_kwargs={}),
    }


@pytest.mark.parametrize("case", sorted(_error_cases(rl, rl_data)))
def test_error_types_match_torchrl(case):
    errors = (RuntimeError, ValueError, TypeError, KeyError)
    with pytest.raises(errors) as theirs:
        _error_cases(rl, rl_data)[case]()
    with pytest.raises(errors, match="SafeProbabilisticModule|ProbabilisticActor") as ours:
        _error_cases(rlmods, rlmods)[case]()
    assert isinstance(ours.value, type(theirs.value)), (type(ours.value), type(theirs.value))
    assert isinstance(ours.value, (ValueError, KeyError))  # and Python's convention holds


def test_safe_actor_fallback_paths_give_the_short_path_output():
    actor = ProbabilisticActor(_net(), in_keys=["loc", "scale"], distribution_class=Normal,
                               spec=Bounded(-0.5, 0.5, (2,)), safe=True, return_log_prob=True)
    observation = 5 * _data(batch=6)["observation"]
    calls = {
        "td": lambda: actor(TensorDict(observation=observation, batch_size=[6])),
        "tensordict_out": lambda: actor(TensorDict(observation=observation, batch_size=[6]),
                                        tensordict_out=TensorDict(batch_size=[6])),
        "kwargs": lambda: dict(zip(actor.out_keys, actor(observation=observation))),
    }
    outputs = {}
    for name, call in calls.items():
        torch.manual_seed(0)
        with set_exploration_type(ExplorationType.RANDOM):
            outputs[name] = call()
    action = outputs["td"]["action"]
    assert bool((action.abs() <= 0.5).all()) and bool((action.abs() == 0.5).any())  # projected
    for name in ("tensordict_out", "kwargs"):
        for key in ("loc", "scale", "action", "action_log_prob"):
            torch.testing.assert_close(outputs[name][key], outputs["td"][key])


# ================================================================================================
# Tests that kill mutants mutation testing found surviving (tools/mutation.sh).
# ================================================================================================

def _mut_normal(**kw):
    return SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"],
                                   distribution_class=D.Normal, **kw)


def _mut_params(n=4, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(n, 2, generator=g).requires_grad_(grad)
    return TensorDict(loc=loc, scale=torch.rand(n, 2, generator=g) + 0.5, batch_size=[n])


def _mut_independent_categorical(logits):
    return D.Independent(D.Categorical(logits=logits), 1)


class _mut_BernoulliWithoutMean(D.Bernoulli):
    """No closed-form mean (and no rsample): MEAN falls back on an empirical estimate."""

    @property
    def mean(self):
        raise NotImplementedError


class _mut_TanhTransformed(D.TransformedDistribution):
    """A reparametrisable distribution without a closed-form mean."""

    def __init__(self, loc, scale):
        super().__init__(D.Normal(loc, scale), [D.TanhTransform()])


# ---- the value each exploration type writes ---------------------------------------------

def test_deterministic_value_of_an_independent_discrete_dist_is_its_mode():
    logits = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(0))
    module = SafeProbabilisticModule(in_keys=["logits"], out_keys=["action"],
                                     distribution_class=_mut_independent_categorical)
    with set_interaction_type(InteractionType.DETERMINISTIC):
        out = module(TensorDict(logits=logits, batch_size=[3]))
    assert torch.equal(out["action"], logits.argmax(-1))


def test_random_value_is_reparametrised_when_the_dist_allows_it():
    module = _mut_normal()
    with set_interaction_type(InteractionType.RANDOM):
        out = module(_mut_params(grad=True))
    assert out["action"].requires_grad


def test_random_value_of_a_dist_without_rsample_is_a_sample():
    module = SafeProbabilisticModule(in_keys=["logits"], out_keys=["action"],
                                     distribution_class=D.Categorical)
    torch.manual_seed(0)
    with set_interaction_type(InteractionType.RANDOM):
        out = module(TensorDict(logits=torch.zeros(200, 3), batch_size=[200]))
    assert set(out["action"].tolist()) == {0, 1, 2}


def test_random_value_with_log_prob_is_reparametrised_for_tanh_normal():
    module = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"],
                                     distribution_class=TanhNormal, return_log_prob=True)
    params = _mut_params(grad=True)
    with set_interaction_type(InteractionType.RANDOM):
        out = module(params)
    assert out["action"].requires_grad
    out["action"].sum().backward()
    assert params["loc"].grad is not None and params["loc"].grad.abs().sum() > 0
    dist = TanhNormal(params["loc"].detach(), params["scale"])
    assert_close(out["action_log_prob"].detach(), dist.log_prob(out["action"].detach()))


def test_mean_without_closed_form_is_an_empirical_mean_of_reparametrised_draws():
    module = SafeProbabilisticModule(in_keys=["loc", "scale"], out_keys=["action"],
                                     distribution_class=_mut_TanhTransformed)
    params = _mut_params(grad=True)
    torch.manual_seed(0)
    with set_interaction_type(InteractionType.MEAN):
        out = module(params)
    assert out["action"].shape == (4, 2)
    assert out["action"].requires_grad
    expected = _mut_TanhTransformed(params["loc"].detach(), params["scale"]).sample((20000,)).mean(0)
    assert_close(out["action"].detach(), expected, atol=0.08, rtol=0)


def test_mean_without_closed_form_nor_rsample_uses_samples():
    probs = torch.tensor([[0.1, 0.9], [0.5, 0.2]])
    module = SafeProbabilisticModule(in_keys=["probs"], out_keys=["action"],
                                     distribution_class=_mut_BernoulliWithoutMean,
                                     n_empirical_estimate=4000)
    assert module.n_empirical_estimate == 4000
    torch.manual_seed(0)
    with set_interaction_type(InteractionType.MEAN):
        out = module(TensorDict(probs=probs, batch_size=[2]))
    assert out["action"].shape == (2, 2)
    assert_close(out["action"], probs, atol=0.05, rtol=0)


# ---- constructor defaults and forwarded arguments ----------------------------------------

def test_defaults_match_tensordict():
    ours = _mut_normal()
    ref = ProbabilisticTensorDictModule(in_keys=["loc", "scale"], out_keys=["action"],
                                        distribution_class=D.Normal)
    assert ours.return_log_prob is ref.return_log_prob is False
    assert ours.cache_dist is ref.cache_dist is False
    assert ours.n_empirical_estimate == ref.n_empirical_estimate == 1000
    out = ours(_mut_params())
    assert "action_log_prob" not in out.keys()


def test_log_prob_key_is_forwarded():
    module = _mut_normal(return_log_prob=True, log_prob_key="lp")
    out = module(_mut_params())
    assert "lp" in out.keys() and "action_log_prob" not in out.keys()


def test_log_prob_keys_is_forwarded():
    module = _mut_normal(return_log_prob=True, log_prob_keys=["my_lp"])
    assert module.log_prob_keys == ["my_lp"]
    assert "my_lp" in module(_mut_params()).keys()


def test_num_samples_is_forwarded():
    module = _mut_normal(num_samples=3, default_interaction_type=InteractionType.RANDOM)
    out = module(_mut_params())
    assert out["action"].shape == (3, 4, 2)


def test_generator_is_forwarded():
    def draw():
        module = _mut_normal(default_interaction_type=InteractionType.RANDOM,
                         generator=torch.Generator().manual_seed(7))
        torch.manual_seed(123)  # the global RNG must not decide the draw
        first = module(_mut_params())["action"]
        torch.manual_seed(456)
        return first
    torch.manual_seed(999)
    a = draw()
    b = draw()
    assert torch.equal(a, b)
    module = _mut_normal(default_interaction_type=InteractionType.RANDOM)
    torch.manual_seed(123)
    assert not torch.equal(module(_mut_params())["action"], a)


# ---- the short path and the fallback -----------------------------------------------------

def test_tensordict_out_is_honoured():
    params = _mut_params()
    out = TensorDict({}, [4])
    result = _mut_normal()(params, tensordict_out=out)
    assert result is out
    assert "action" in out.keys()
    assert "action" not in params.keys()


def test_safe_false_does_not_project():
    spec = Bounded(-0.1, 0.1, shape=(2,))
    params = _mut_params()
    params["loc"] = params["loc"] * 0 + 5.0
    out = _mut_normal(spec=spec)(params)  # deterministic: the mean, 5.0, outside the spec
    assert (out["action"] == 5.0).all()
    assert (_mut_normal(spec=spec, safe=True)(params.clone())["action"] <= 0.1).all()


def test_safe_keyword_call_projects_and_returns_a_tensor():
    spec = Bounded(-0.1, 0.1, shape=(2,))
    module = _mut_normal(spec=spec, safe=True)
    params = _mut_params()
    out = module(loc=params["loc"], scale=params["scale"])
    assert isinstance(out, torch.Tensor)
    assert out.shape == (4, 2)
    assert_close(out, module(params.clone())["action"])


def test_deeply_nested_parameter_keys():
    module = SafeProbabilisticModule(in_keys=[("a", "b", "loc"), ("a", "b", "scale")],
                                     out_keys=["action"], distribution_class=D.Normal)
    params = _mut_params()
    td = TensorDict({"a": {"b": params.to_dict()}}, [4])
    assert_close(module(td)["action"], params["loc"])


def test_distribution_kwargs_are_used():
    module = SafeProbabilisticModule(in_keys=["loc"], out_keys=["action"],
                                     distribution_class=D.Normal,
                                     distribution_kwargs={"scale": 2.0}, return_log_prob=True)
    out = module(TensorDict(loc=torch.zeros(3), batch_size=[3]))
    assert_close(out["action_log_prob"], D.Normal(0.0, 2.0).log_prob(torch.zeros(3)))


# ---- the sequential ------------------------------------------------------------------------

def _mut_seq(**kw):
    net = TensorDictModule(torch.nn.Linear(3, 2), in_keys=["x"], out_keys=["loc"])
    head = SafeProbabilisticModule(in_keys=["loc"], out_keys=["action"],
                                   distribution_class=D.Normal,
                                   distribution_kwargs={"scale": 1.0})
    return SafeProbabilisticTensorDictSequential(net, head, **kw)


def test_sequential_honours_tensordict_out():
    seq = _mut_seq()
    td = TensorDict(x=torch.randn(4, 3), batch_size=[4])
    out = TensorDict({}, [4])
    result = seq(td, tensordict_out=out)
    assert result is out
    assert {"loc", "action"} <= set(out.keys())
    assert "action" not in td.keys()


def test_sequential_forwards_partial_tolerant():
    import torchrl.modules as tm
    net = TensorDictModule(torch.nn.Linear(3, 2), in_keys=["x"], out_keys=["loc"])
    head = tm.SafeProbabilisticModule(in_keys=["loc"], out_keys=["action"],
                                      distribution_class=D.Normal,
                                      distribution_kwargs={"scale": 1.0})
    theirs = tm.SafeProbabilisticTensorDictSequential(net, head, partial_tolerant=True)
    assert _mut_seq(partial_tolerant=True).partial_tolerant is theirs.partial_tolerant is True
    assert _mut_seq().partial_tolerant is False


def test_forward_hooks_of_the_parameter_module_run():
    net = TensorDictModule(torch.nn.Linear(3, 2), in_keys=["x"], out_keys=["loc"])
    net.register_forward_hook(lambda mod, args, out: out.set("loc", out["loc"] * 0 + 3.0))
    head = SafeProbabilisticModule(in_keys=["loc"], out_keys=["action"],
                                   distribution_class=D.Normal,
                                   distribution_kwargs={"scale": 1.0})
    seq = SafeProbabilisticTensorDictSequential(net, head)
    out = seq(TensorDict(x=torch.randn(4, 3), batch_size=[4]))
    assert (out["action"] == 3.0).all()


# ---- ProbabilisticActor's spec ---------------------------------------------------------------

def test_actor_keeps_a_composite_spec_as_is():
    leaf = Bounded(-1.0, 1.0, shape=(2,))
    net = TensorDictModule(torch.nn.Linear(3, 2), in_keys=["x"], out_keys=["loc"])
    actor = ProbabilisticActor(net, in_keys=["loc"], spec=Composite({"action": leaf}),
                               distribution_class=D.Normal, distribution_kwargs={"scale": 1.0})
    assert actor.spec["action"] == leaf


def test_actor_rejects_a_single_spec_for_two_out_keys():
    net = TensorDictModule(torch.nn.Linear(3, 2), in_keys=["x"], out_keys=["loc"])
    with pytest.raises(ValueError, match=r"single \(non-Composite\) spec needs exactly one "
                                         r"out_key"):
        ProbabilisticActor(net, in_keys=["loc"], out_keys=["a", "b"],
                           spec=Bounded(-1.0, 1.0, shape=(2,)), distribution_class=D.Normal,
                           distribution_kwargs={"scale": 1.0})


def test_cache_dist_is_forwarded_as_tensordict_keeps_it():
    kwargs = dict(in_keys=["loc", "scale"], out_keys=["action"], distribution_class=TanhNormal)
    for flag in (False, True):
        ours = SafeProbabilisticModule(cache_dist=flag, **kwargs)
        ref = ProbabilisticTensorDictModule(cache_dist=flag, **kwargs)
        assert ours.cache_dist is ref.cache_dist is flag
    assert SafeProbabilisticModule(**kwargs).cache_dist is False
