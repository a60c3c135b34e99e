"""rlmods.exploration against torchrl 0.14 (the oracle): signatures, numbers, masks, resets, errors."""

import inspect
import warnings

import pytest
import torch
import torchrl.data as rl_data
import torchrl.modules as rl
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn

from rlmods._checks import InvalidTypeError, InvalidValueError, set_validate_args

import rlmods
from rlmods import (AdditiveGaussianModule, AdditiveGaussianWrapper, Bounded, Categorical,
                    ConsistentDropout, ConsistentDropoutModule, EGreedyModule, EGreedyWrapper,
                    ExplorationType, NoisyLazyLinear, NoisyLinear, OneHot,
                    OrnsteinUhlenbeckProcessModule, OrnsteinUhlenbeckProcessWrapper, reset_noise,
                    set_exploration_type)
import math
import torchrl.data as tdata
import torchrl.modules as tm
from torch.testing import assert_close
from rlmods import Composite
from rlmods import Unbounded
from rlmods.envs import ExplorationType
from rlmods.envs import set_exploration_type
from oracle_helpers import raised as _raised

NAMES = ["EGreedyModule", "EGreedyWrapper", "AdditiveGaussianModule", "AdditiveGaussianWrapper",
         "OrnsteinUhlenbeckProcessModule", "OrnsteinUhlenbeckProcessWrapper", "ConsistentDropout",
         "ConsistentDropoutModule", "NoisyLinear", "NoisyLazyLinear", "reset_noise"]
DETERMINISTIC_TYPES = [ExplorationType.DETERMINISTIC, ExplorationType.MODE, ExplorationType.MEAN]


def _params(fn):
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torchrl(name):
    assert _params(getattr(rlmods, name)) == _params(getattr(rl, name))


def _both(spec_cls, *args, **kwargs):
    return getattr(rlmods, spec_cls)(*args, **kwargs), getattr(rl_data, spec_cls)(*args, **kwargs)


# --- annealing -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, scale, spec_args", [
    ("EGreedyModule", "eps", ("OneHot", 4)),
    ("AdditiveGaussianModule", "sigma", ("Bounded", -1.0, 1.0, (2,))),
    ("OrnsteinUhlenbeckProcessModule", "eps", ("Bounded", -1.0, 1.0, (2,)))])
def test_annealing_step_by_step_matches_torchrl(name, scale, spec_args):
    ours_spec, theirs_spec = _both(*spec_args)
    ours = getattr(rlmods, name)(ours_spec, 0.9, 0.2, 7)
    theirs = getattr(rl, name)(theirs_spec, 0.9, 0.2, 7)
    for frames in [1, 1, 2, 0, 1, 5, 3]:
        ours.step(frames)
        theirs.step(frames)
        torch.testing.assert_close(getattr(ours, scale), getattr(theirs, scale))
    assert getattr(ours, scale).item() == pytest.approx(0.2)
    assert ours.annealing_progress == pytest.approx(1.0)


def test_annealing_state_is_visible():
    module = EGreedyModule(OneHot(4), eps_init=1.0, eps_end=0.1, annealing_num_steps=100)
    assert module.annealing_progress == 0.0 and "annealing_progress=0.0%" in repr(module)
    module.step(25)
    assert module.annealing_progress == pytest.approx(0.25)
    assert "eps=0.7750" in repr(module) and "annealing_progress=25.0%" in repr(module)


def test_step_of_many_frames_is_one_exact_update_better_than_torchrl():
    # torchrl's step(frames) loops `frames` times, each subtraction rounding in float32: after
    # 1234 frames eps is off by ~1e-5. rlmods subtracts frames * delta once: exact to float32.
    ours = EGreedyModule(OneHot(3), 1.0, 0.05, 10_000)
    theirs = rl.EGreedyModule(rl_data.OneHot(3), 1.0, 0.05, 10_000)
    ours.step(1234)
    theirs.step(1234)
    exact = 1.0 - 1234 * 0.95 / 10_000
    assert abs(ours.eps.item() - exact) < 1e-7 < abs(theirs.eps.item() - exact)
    torch.testing.assert_close(ours.eps, theirs.eps, atol=1e-4, rtol=0)


# --- EGreedyModule ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec_args, make_action", [
    (("OneHot", 5), lambda: torch.eye(5)[torch.randint(5, (64,))]),
    (("Categorical", 5), lambda: torch.randint(5, (64,))),
    (("Bounded", -2.0, 2.0, (3,)), lambda: torch.rand(64, 3))])
def test_egreedy_matches_torchrl(spec_args, make_action):
    ours_spec, theirs_spec = _both(*spec_args)
    ours, theirs = EGreedyModule(ours_spec, 0.5), rl.EGreedyModule(theirs_spec, 0.5)
    action = make_action()
    torch.manual_seed(1)
    out = ours(TensorDict({"action": action.clone()}, [64]))["action"]
    torch.manual_seed(1)
    expected = theirs(TensorDict({"action": action.clone()}, [64]))["action"]
    torch.testing.assert_close(out, expected)
    changed = (out != action).reshape(64, -1).any(-1).float().mean()
    assert 0.1 < changed < 0.6  # ~eps of the rows are redrawn (a redraw may land on the same action)


def test_egreedy_mask_matches_torchrl_and_only_allowed_actions():
    mask = torch.rand(256, 6) < 0.5
    mask[:, 2] = True
    greedy = torch.full((256,), 2)
    ours = EGreedyModule(Categorical(6), 1.0, action_mask_key="action_mask")
    theirs = rl.EGreedyModule(rl_data.Categorical(6), 1.0, action_mask_key="action_mask")
    torch.manual_seed(2)
    out = ours(TensorDict({"action": greedy.clone(), "action_mask": mask}, [256]))["action"]
    torch.manual_seed(2)
    expected = theirs(TensorDict({"action": greedy.clone(), "action_mask": mask}, [256]))["action"]
    torch.testing.assert_close(out, expected)
    assert mask.gather(-1, out.unsqueeze(-1)).all()
    assert (out != 2).any()


def test_egreedy_mask_does_not_stick_to_the_module():
    ours = EGreedyModule(Categorical(3), 1.0, action_mask_key="mask")
    mask = torch.tensor([[False, False, True]]).expand(4, 3)
    ours(TensorDict({"action": torch.zeros(4, dtype=torch.long), "mask": mask}, [4]))
    assert ours.spec["action"].mask is None


def test_egreedy_nested_key_and_batched_dims():
    spec = OneHot(3)
    module = EGreedyModule(spec, 1.0, action_key=("agents", "action"))
    td = TensorDict({"agents": TensorDict({"action": torch.eye(3)[torch.zeros(5, 2, dtype=torch.long)]},
                                          [5, 2])}, [5])
    out = module(td)["agents", "action"]
    assert out.shape == (5, 2, 3) and bool((out.sum(-1) == 1).all())


@pytest.mark.parametrize("etype", DETERMINISTIC_TYPES)
def test_no_noise_outside_random(etype):
    policy = TensorDictModule(nn.Linear(3, 2), ["observation"], ["action"])
    inner = TensorDictSequential(policy, EGreedyModule(Bounded(-5.0, 5.0, (2,)), 1.0))
    modules = TensorDictSequential(TensorDictSequential(inner, AdditiveGaussianModule(Bounded(-5.0, 5.0, (2,)))),
                                   OrnsteinUhlenbeckProcessModule(Bounded(-5.0, 5.0, (2,)), sigma=3.0))
    td = TensorDict({"observation": torch.randn(8, 3), "is_init": torch.ones(8, 1, dtype=torch.bool)}, [8])
    with set_exploration_type(etype):
        out = modules(td.clone())
    torch.testing.assert_close(out["action"], policy(td.clone())["action"])
    assert "_ou_prev_noise" not in out.keys()
    with set_exploration_type(ExplorationType.RANDOM):
        assert not torch.allclose(modules(td.clone())["action"], policy(td.clone())["action"])


def test_egreedy_reference_guide_snippet_needs_spec():
    with pytest.raises(TypeError, match="action_space"):
        EGreedyModule(action_space=OneHot(2), annealing_num_steps=100_000, eps_init=1.0, eps_end=0.05)
    with pytest.raises(TypeError, match="action_space"):  # the guide's snippet fails in torchrl too
        rl.EGreedyModule(action_space=rl_data.OneHot(2), annealing_num_steps=100_000, eps_init=1.0, eps_end=0.05)


def test_hot_path_does_not_write_through_from_any(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("TensorDict.from_any called on the hot path")
    monkeypatch.setattr(TensorDict, "from_any", boom)
    td = TensorDict({"action": torch.zeros(4, 2), "is_init": torch.ones(4, 1, dtype=torch.bool)}, [4])
    for module in [EGreedyModule(Bounded(-1.0, 1.0, (2,))), AdditiveGaussianModule(Bounded(-1.0, 1.0, (2,))),
                   OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)))]:
        module(td)


# --- AdditiveGaussianModule -------------------------------------------------------------------

def test_gaussian_matches_torchrl_and_stays_in_spec():
    ours_spec, theirs_spec = _both("Bounded", -1.0, 1.0, (3,))
    ours = AdditiveGaussianModule(ours_spec, sigma_init=0.7, mean=0.1, std=2.0)
    theirs = rl.AdditiveGaussianModule(theirs_spec, sigma_init=0.7, mean=0.1, std=2.0)
    action = torch.rand(128, 3) - 0.5
    torch.manual_seed(3)
    out = ours(TensorDict({"action": action.clone()}, [128]))["action"]
    torch.manual_seed(3)
    expected = theirs(TensorDict({"action": action.clone()}, [128]))["action"]
    torch.testing.assert_close(out, expected)
    assert out.abs().max() <= 1.0


def test_gaussian_noise_statistics():
    module = AdditiveGaussianModule(rlmods.Unbounded((2,)), sigma_init=0.3, mean=0.5, std=2.0)
    noise = module(TensorDict({"action": torch.zeros(200_000, 2)}, [200_000]))["action"]
    assert noise.mean().item() == pytest.approx(0.3 * 0.5, abs=0.01)
    assert noise.std().item() == pytest.approx(0.3 * 2.0, abs=0.01)


def test_gaussian_spec_can_be_set_later():
    module = AdditiveGaussianModule()
    td = TensorDict({"action": torch.zeros(2, 1)}, [2])
    with pytest.raises(ValueError, match="AdditiveGaussianModule: spec must be set before the first call"):
        module(td)
    module.spec = Bounded(-1.0, 1.0, (1,))
    assert module(td)["action"].shape == (2, 1)


# --- OrnsteinUhlenbeckProcessModule -----------------------------------------------------------

def _ou_rollout(module, steps=12, batch=4, seed=5):
    """Feed the module its own state back, with episode starts at t=0 and t=6 for sample 0."""
    torch.manual_seed(seed)
    td = TensorDict({"action": torch.zeros(batch, 2), "is_init": torch.ones(batch, 1, dtype=torch.bool)}, [batch])
    out = []
    for t in range(steps):
        td = module(td)
        out.append(td.clone())
        td = td.exclude("action").set("action", torch.full((batch, 2), 0.1))
        td["is_init"] = torch.zeros(batch, 1, dtype=torch.bool)
        if t == 5:
            td["is_init"][0] = True
    return torch.stack(out)


def test_ou_rollout_matches_torchrl():
    kwargs = dict(eps_init=0.8, theta=0.3, sigma=0.5, dt=0.1, sigma_min=0.1, n_steps_annealing=5)
    ours = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)), **kwargs)
    theirs = rl.OrnsteinUhlenbeckProcessModule(rl_data.Bounded(-1.0, 1.0, (2,)), **kwargs)
    ours_out, theirs_out = _ou_rollout(ours), _ou_rollout(theirs)
    for key in ["action", "_ou_prev_noise", "_ou_steps"]:
        torch.testing.assert_close(ours_out[key], theirs_out[key])
    assert ours_out["_ou_steps"][:, 0].tolist() == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]
    assert ours_out["_ou_steps"][:, 1].tolist() == list(range(1, 13))


def test_ou_state_is_in_the_tensordict_so_a_step_replays():
    module = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)))
    out = _ou_rollout(module, steps=3)
    state = out[1].exclude("action", "_ou_prev_noise", "_ou_steps").set("action", torch.full((4, 2), 0.1))
    state.update(out[1].select("_ou_prev_noise", "_ou_steps"))
    torch.manual_seed(0)
    first = module(state.clone())
    torch.manual_seed(0)
    again = module(state.clone())
    torch.testing.assert_close(first["action"], again["action"])
    assert first["_ou_steps"].tolist() == [3, 3, 3, 3]


def test_ou_is_init_resets_noise():
    module = OrnsteinUhlenbeckProcessModule(rlmods.Unbounded((2,)), theta=0.0, sigma=1.0, dt=1.0)
    td = TensorDict({"action": torch.zeros(3, 2), "_ou_prev_noise": torch.full((3, 2), 100.0),
                     "_ou_steps": torch.full((3,), 50), "is_init": torch.tensor([[True], [False], [False]])}, [3])
    out = module(td)
    assert out["_ou_prev_noise"][0].abs().max() < 10 and out["_ou_prev_noise"][1:].abs().min() > 90
    assert out["_ou_steps"].tolist() == [1, 51, 51]


def test_ou_warns_without_is_init():
    module = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)))
    with pytest.warns(UserWarning, match="expected key 'is_init'"):
        module(TensorDict({"action": torch.zeros(2, 2)}, [2]))


def test_ou_safe_projects_and_unsafe_does_not():
    spec = Bounded(-0.1, 0.1, (2,))
    td = TensorDict({"action": torch.zeros(64, 2), "is_init": torch.ones(64, 1, dtype=torch.bool)}, [64])
    safe = OrnsteinUhlenbeckProcessModule(spec, sigma=10.0)(td.clone())["action"]
    unsafe = OrnsteinUhlenbeckProcessModule(spec, sigma=10.0, safe=False)(td.clone())["action"]
    assert safe.abs().max() <= 0.1 and unsafe.abs().max() > 0.1


def test_ou_state_dict_loads_from_torchrl():
    theirs = rl.OrnsteinUhlenbeckProcessModule(rl_data.Bounded(-1.0, 1.0, (2,)))
    theirs.step(300)
    ours = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)))
    ours.load_state_dict(theirs.state_dict())
    torch.testing.assert_close(ours.eps, theirs.eps)
    assert ours.annealing_progress == pytest.approx(0.3, abs=1e-4)


@pytest.mark.parametrize("name, spec_args", [("EGreedyModule", ("OneHot", 3)),
                                             ("AdditiveGaussianModule", ("Bounded", -1.0, 1.0, (2,)))])
def test_state_dict_round_trip_with_torchrl(name, spec_args):
    ours_spec, theirs_spec = _both(*spec_args)
    ours, theirs = getattr(rlmods, name)(ours_spec), getattr(rl, name)(theirs_spec)
    theirs.step(10)
    ours.load_state_dict(theirs.state_dict())
    ours.step(5)
    theirs.load_state_dict(ours.state_dict())
    assert set(ours.state_dict()) == set(theirs.state_dict())
    assert ours.annealing_progress == pytest.approx(15 / 1000, abs=1e-4)


# --- deprecated wrappers -----------------------------------------------------------------------

@pytest.mark.parametrize("wrapper, module, kwargs", [
    (EGreedyWrapper, EGreedyModule, {}),
    (AdditiveGaussianWrapper, AdditiveGaussianModule, {}),
    (OrnsteinUhlenbeckProcessWrapper, OrnsteinUhlenbeckProcessModule, {})])
def test_deprecated_wrappers_compose_the_module_better_than_torchrl(wrapper, module, kwargs):
    spec = Bounded(-1.0, 1.0, (2,))
    policy = TensorDictModule(nn.Linear(3, 2), ["observation"], ["action"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wrapped = wrapper(policy, spec=spec, **kwargs)
    deprecations = [w for w in caught if w.category is DeprecationWarning]
    assert len(caught) == len(deprecations) == 1  # one warning, naming the replacement
    assert f"use TensorDictSequential(policy, {module.__name__}" in str(deprecations[0].message)
    assert isinstance(wrapped, TensorDictSequential) and isinstance(wrapped.module[-1], module)
    td = TensorDict({"observation": torch.randn(5, 3), "is_init": torch.ones(5, 1, dtype=torch.bool)}, [5])
    torch.manual_seed(0)
    out = wrapped(td.clone())["action"]
    torch.manual_seed(0)
    expected = TensorDictSequential(policy, module(spec))(td.clone())["action"]
    torch.testing.assert_close(out, expected)
    wrapped.step(500)
    assert wrapped.annealing_progress == pytest.approx(0.5)
    with pytest.raises(RuntimeError):  # torchrl 0.14 raises on the deprecated names; rlmods keeps them working
        getattr(rl, wrapper.__name__)(policy, spec=rl_data.Bounded(-1.0, 1.0, (2,)))


def test_deprecated_wrapper_takes_the_policy_spec():
    policy = TensorDictModule(nn.Linear(3, 2), ["observation"], ["action"])
    policy.spec = rlmods.Composite(action=Bounded(-1.0, 1.0, (2,)))
    with pytest.warns(DeprecationWarning):
        wrapped = AdditiveGaussianWrapper(policy)
    assert wrapped.module[-1].spec["action"].shape == (2,)


# --- ConsistentDropout -------------------------------------------------------------------------

def test_consistent_dropout_matches_torchrl():
    x = torch.randn(6, 5)
    torch.manual_seed(4)
    out, mask = ConsistentDropout(0.3)(x)
    torch.manual_seed(4)
    expected, expected_mask = rl.ConsistentDropout(0.3)(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(mask, expected_mask)


def test_consistent_dropout_module_replays_mask_and_follows_train_eval():
    module = ConsistentDropoutModule(0.5, in_keys="x")
    td = module(TensorDict({"x": torch.ones(8, 4)}, [8]))
    mask = td["mask_x"]
    replay = module(TensorDict({"x": torch.full((8, 4), 3.0), "mask_x": mask}, [8]))
    torch.testing.assert_close(replay["x"], 3.0 * mask)
    with set_exploration_type(ExplorationType.DETERMINISTIC):  # the exploration type has no effect
        assert torch.equal(module(TensorDict({"x": torch.ones(8, 4), "mask_x": mask}, [8]))["x"], mask)
    module.eval()
    out = module(TensorDict({"x": torch.ones(8, 4)}, [8]))
    assert torch.equal(out["x"], torch.ones(8, 4)) and "mask_x" not in out.keys()


def test_consistent_dropout_module_matches_torchrl():
    ours = ConsistentDropoutModule(0.25, in_keys=["x", "m"])
    theirs = rl.ConsistentDropoutModule(0.25, in_keys=["x", "m"])
    x = torch.randn(5, 3)
    torch.manual_seed(6)
    out = ours(TensorDict({"x": x}, [5]))
    torch.manual_seed(6)
    expected = theirs(TensorDict({"x": x}, [5]))
    torch.testing.assert_close(out["x"], expected["x"])
    torch.testing.assert_close(out["m"], expected["m"])


def test_consistent_dropout_mask_key_is_stable_better_than_torchrl():
    # torchrl names the mask f"mask_{id(self)}": it changes between processes, so a replay buffer
    # saved in one process does not find its masks in the next. rlmods derives it from the in_key.
    assert ConsistentDropoutModule(0.1, "h").in_keys == ["h", "mask_h"]
    assert ConsistentDropoutModule(0.1, ("a", "h")).in_keys[1] == "mask_a_h"
    first, second = rl.ConsistentDropoutModule(0.1, "h"), rl.ConsistentDropoutModule(0.1, "h")
    assert first.in_keys[1] != second.in_keys[1]


def test_consistent_dropout_primer_draws_a_mask_per_episode():
    env = rlmods.TransformedEnv(rlmods.GymEnv("Pendulum-v1"), rlmods.InitTracker())
    policy = TensorDictSequential(
        TensorDictModule(nn.Linear(3, 4), ["observation"], ["hidden"]),
        ConsistentDropoutModule(0.5, in_keys="hidden", input_shape=(4,)),
        TensorDictModule(nn.Linear(4, 1), ["hidden"], ["action"]))
    env.append_transform(policy[1].make_tensordict_primer())
    env.set_seed(0)
    rollout = env.rollout(5, policy)
    masks = rollout["mask_hidden"]
    assert masks.shape == (5, 4) and bool((masks == masks[0]).all())


# --- NoisyLinear ---------------------------------------------------------------------------------

def test_noisy_linear_matches_torchrl_and_loads_its_state_dict():
    torch.manual_seed(7)
    ours = NoisyLinear(5, 3)
    torch.manual_seed(7)
    theirs = rl.NoisyLinear(5, 3)
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
    assert ours.std_init == 0.5 and ours.weight_sigma[0, 0].item() == pytest.approx(0.5 / 5 ** 0.5)
    x = torch.randn(4, 5)
    for etype in [ExplorationType.RANDOM, ExplorationType.DETERMINISTIC]:
        with set_exploration_type(etype):
            torch.testing.assert_close(ours(x), theirs(x))
    theirs.reset_noise()
    ours.load_state_dict(theirs.state_dict())
    with set_exploration_type(ExplorationType.RANDOM):
        torch.testing.assert_close(ours(x), theirs(x))


def test_noisy_linear_noise_only_under_random_and_only_resampled_by_reset_noise():
    layer = NoisyLinear(4, 3)
    x = torch.randn(2, 4)
    mean_out = torch.nn.functional.linear(x, layer.weight_mu, layer.bias_mu)
    for etype in DETERMINISTIC_TYPES + [None]:
        with set_exploration_type(etype):
            torch.testing.assert_close(layer(x), mean_out)
    with set_exploration_type(ExplorationType.RANDOM):
        y0, y1 = layer(x), layer(x)
        nn.Sequential(layer).apply(reset_noise)
        y2 = layer(x)
    assert torch.equal(y0, y1) and not torch.equal(y0, y2) and not torch.equal(y0, mean_out)


def test_noisy_linear_legacy_training_mode():
    layer = NoisyLinear(4, 3, use_exploration_type=False)
    x = torch.randn(2, 4)
    noisy = layer(x)
    layer.eval()
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, layer.weight_mu, layer.bias_mu))
    assert not torch.equal(noisy, layer(x))


def test_noisy_lazy_linear_matches_torchrl():
    torch.manual_seed(8)
    ours = NoisyLazyLinear(3, bias=False)
    ours(torch.ones(2, 6))
    torch.manual_seed(8)
    theirs = rl.NoisyLazyLinear(3, bias=False)
    theirs(torch.ones(2, 6))
    assert type(ours) is NoisyLinear and ours.bias is None
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(eps_init=1.5), r"EGreedyModule: eps_init must be a probability in \[0, 1\], got 1.5."),
    (dict(eps_end=-0.1), r"EGreedyModule: eps_end must be a probability in \[0, 1\], got -0.1."),
    (dict(eps_init=0.1, eps_end=0.5), "EGreedyModule: eps_end must not exceed eps_init"),
    (dict(annealing_num_steps=0), "EGreedyModule: annealing_num_steps must be a positive number of steps, got 0."),
])
def test_egreedy_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EGreedyModule(OneHot(3), **kwargs)


def test_missing_spec_errors():
    with pytest.raises(TypeError, match="EGreedyModule: spec must be a TensorSpec .*, got None."):
        EGreedyModule(None)
    with pytest.raises(TypeError, match="OrnsteinUhlenbeckProcessModule: spec must be a TensorSpec"):
        OrnsteinUhlenbeckProcessModule(None)
    policy = TensorDictModule(nn.Linear(3, 2), ["observation"], ["action"])
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="EGreedyWrapper: spec must be given"):
        EGreedyWrapper(policy)


def test_mask_needs_discrete_spec():
    with pytest.raises(TypeError, match="EGreedyModule: action_mask_key needs a discrete spec .*, got Bounded."):
        EGreedyModule(Bounded(-1.0, 1.0, (2,)), action_mask_key="mask")


@pytest.mark.parametrize("module", [
    EGreedyModule(Bounded(-1.0, 1.0, (4,))),
    AdditiveGaussianModule(Bounded(-1.0, 1.0, (4,))),
    OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (4,)))], ids=lambda m: type(m).__name__)
def test_action_shape_must_match_spec(module):
    td = TensorDict({"action": torch.zeros(10, 3), "is_init": torch.ones(10, 1, dtype=torch.bool)}, [10])
    with pytest.raises(ValueError, match=rf"{type(module).__name__}: 'action' must end with shape \(4,\), "
                                         r"got shape \(10, 3\)."):
        module(td)


def test_missing_keys():
    with pytest.raises(KeyError, match="EGreedyModule: expected key 'action' in the input tensordict"):
        EGreedyModule(OneHot(2))(TensorDict({"obs": torch.zeros(2)}, [2]))
    module = EGreedyModule(Categorical(2), action_mask_key="mask")
    with pytest.raises(KeyError, match="EGreedyModule: expected key 'mask'"):
        module(TensorDict({"action": torch.zeros(2, dtype=torch.long)}, [2]))


def test_ou_bad_is_init_shape():
    module = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)), action_key=("agents", "action"))
    td = TensorDict({"agents": TensorDict({"action": torch.zeros(4, 2)}, [4]),
                     "is_init": torch.ones(3, 1, dtype=torch.bool)}, [])
    with pytest.raises(ValueError, match=r"'is_init' must have the action's batch shape \(4,\), got shape \(3, 1\)."):
        module(td)


def test_other_errors():
    with pytest.raises(ValueError, match=r"ConsistentDropout: p must be a probability in \[0, 1\], got 1.5."):
        ConsistentDropout(1.5)
    with pytest.raises(ValueError, match=r"ConsistentDropoutModule: p must be in \[0, 1\), got 1.0."):
        ConsistentDropoutModule(1.0, "x")
    with pytest.raises(ValueError, match="ConsistentDropoutModule: in_keys and out_keys must be"):
        ConsistentDropoutModule(0.5, ["x", "m", "z"])
    with pytest.raises(ValueError, match="ConsistentDropoutModule: input_shape must be given"):
        ConsistentDropoutModule(0.5, "x").make_tensordict_primer()
    with pytest.raises(ValueError, match="ConsistentDropout: make_mask needs input or shape, got neither."):
        ConsistentDropout().make_mask()
    with pytest.raises(ValueError, match="NoisyLinear: std_init must be >= 0, got -1."):
        NoisyLinear(2, 2, std_init=-1)
    with pytest.raises(ValueError, match="EGreedyModule: frames must be a non-negative int, got -2."):
        EGreedyModule(OneHot(2)).step(-2)
    with pytest.raises(ValueError, match="AdditiveGaussianModule: sigma_end must be >= 0, got -1."):
        AdditiveGaussianModule(sigma_end=-1)


def test_no_warning_in_normal_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EGreedyModule(OneHot(2), 0.5)(TensorDict({"action": torch.eye(2)}, [2]))


# --- lazy noisy MLP (issue 9) -------------------------------------------------------------------

def test_lazy_noisy_mlp_matches_torchrl():
    """MLP(in_features=None, layer_class=NoisyLinear) starts with a NoisyLazyLinear, as torchrl."""
    kwargs = dict(in_features=None, out_features=3, num_cells=[8])
    ours = rlmods.MLP(layer_class=NoisyLinear, **kwargs)
    theirs = rl.MLP(layer_class=rl.NoisyLinear, **kwargs)
    assert type(ours[0]) is NoisyLazyLinear and type(theirs[0]) is rl.NoisyLazyLinear
    x = torch.randn(4, 6)
    ours(x), theirs(x)  # materialise both
    assert type(ours[0]) is NoisyLinear and ours[0].weight_mu.shape == (8, 6)
    ours.load_state_dict(theirs.state_dict())
    for etype in [ExplorationType.RANDOM, ExplorationType.DETERMINISTIC]:
        with set_exploration_type(etype):
            torch.testing.assert_close(ours(x), theirs(x))


def test_noisy_mlp_with_single_bias_last_layer_is_rejected_by_torchrl():
    """torchrl refuses a shared last bias on a noisy layer; so does rlmods (next test)."""
    with pytest.raises(ValueError, match="single_bias_last_layer=True is incompatible with NoisyLinear"):
        rl.MLP(in_features=4, out_features=3, num_cells=[8], layer_class=rl.NoisyLinear,
               single_bias_last_layer=True)


@pytest.mark.parametrize("in_features", [4, None])
def test_noisy_mlp_with_single_bias_last_layer_is_rejected(in_features):
    with pytest.raises(ValueError, match="single_bias_last_layer=True is incompatible with "
                                         "Noisy(Lazy)?Linear"):
        rlmods.MLP(in_features=in_features, out_features=3, num_cells=[8], layer_class=NoisyLinear,
                   single_bias_last_layer=True)


# --- the ε-greedy mask check and the validation switch ------------------------------------------

def _masked_egreedy_input(mask_rows):
    mask = torch.tensor(mask_rows)
    return TensorDict({"action": torch.zeros(len(mask_rows), dtype=torch.long), "mask": mask},
                      [len(mask_rows)])


@pytest.mark.parametrize("spec, mask_rows", [
    (Categorical(3), [[True, False, False], [False, False, False]]),
    (rlmods.MultiCategorical([2, 2]), [[True, False, True, True], [True, True, False, False]])],
    ids=["Categorical", "MultiCategorical-group"])
def test_egreedy_mask_that_allows_nothing_is_an_error(spec, mask_rows):
    module = EGreedyModule(spec, action_mask_key="mask")
    td = _masked_egreedy_input(mask_rows)
    if isinstance(spec, rlmods.MultiCategorical):
        td["action"] = torch.zeros(len(mask_rows), 2, dtype=torch.long)
    with pytest.raises(InvalidValueError, match=r"EGreedyModule: 'mask' must allow at least one "
                                                r"action in every row, got 1 row\(s\) of all False."):
        module(td)


def test_egreedy_mask_check_follows_the_validation_switch():
    """Off, the module does not read the mask's values (the error, if any, comes from below)."""
    module = EGreedyModule(Categorical(3), action_mask_key="mask")
    td = _masked_egreedy_input([[True, False, False], [False, False, False]])
    with set_validate_args(False):
        with pytest.raises((ValueError, RuntimeError)) as info:
            module(td.clone())
    assert not str(info.value).startswith("EGreedyModule:")
    with set_validate_args(False):  # a valid mask still works without the check
        out = module(_masked_egreedy_input([[True, False, False]] * 50))["action"]
    assert bool((out == 0).all())


# --- exception types a torchrl user catches ----------------------------------------------------

ERROR_CASES = {
    "egreedy_eps_end_above_eps_init": lambda lib, data: lib.EGreedyModule(
        data.OneHot(3), eps_init=0.1, eps_end=0.5),
    "gaussian_sigma_end_above_sigma_init": lambda lib, data: lib.AdditiveGaussianModule(
        data.Bounded(-1.0, 1.0, (2,)), sigma_init=0.1, sigma_end=0.5),
    "ou_eps_end_above_eps_init": lambda lib, data: lib.OrnsteinUhlenbeckProcessModule(
        data.Bounded(-1.0, 1.0, (2,)), eps_init=0.1, eps_end=0.5),
    "egreedy_without_spec": lambda lib, data: lib.EGreedyModule(None)(
        TensorDict({"action": torch.zeros(2, 3)}, [2])),
    "ou_without_spec": lambda lib, data: lib.OrnsteinUhlenbeckProcessModule(None),
    "gaussian_called_before_its_spec_is_set": lambda lib, data: lib.AdditiveGaussianModule()(
        TensorDict({"action": torch.zeros(2, 3)}, [2])),
    "egreedy_action_shape_mismatch": lambda lib, data: lib.EGreedyModule(
        data.Bounded(-1.0, 1.0, (4,)))(TensorDict({"action": torch.zeros(2, 3)}, [2])),
    "egreedy_missing_mask": lambda lib, data: lib.EGreedyModule(
        data.Categorical(3), action_mask_key="mask")(
        TensorDict({"action": torch.zeros(2, dtype=torch.long)}, [2])),
    "egreedy_mask_allows_nothing": lambda lib, data: lib.EGreedyModule(
        data.Categorical(3), action_mask_key="mask")(
        _masked_egreedy_input([[True, False, False], [False, False, False]])),
    "ou_is_init_of_another_batch_shape": lambda lib, data: lib.OrnsteinUhlenbeckProcessModule(
        data.Bounded(-1.0, 1.0, (2,)), action_key=("agents", "action"))(TensorDict(
            {"agents": TensorDict({"action": torch.zeros(4, 2)}, [4]),
             "is_init": torch.ones(3, 1, dtype=torch.bool)}, [])),
    "dropout_mask_without_input_or_shape": lambda lib, data: lib.ConsistentDropout().make_mask(),
    "dropout_module_bad_keys": lambda lib, data: lib.ConsistentDropoutModule(0.5, ["x", "m", "z"]),
    "dropout_module_bad_p": lambda lib, data: lib.ConsistentDropoutModule(1.0, "x"),
    "dropout_primer_without_input_shape": lambda lib, data: lib.ConsistentDropoutModule(
        0.5, "x").make_tensordict_primer(),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_error_types_match_torchrl(case):
    theirs = _raised(lambda: ERROR_CASES[case](rl, rl_data))
    ours = _raised(lambda: ERROR_CASES[case](rlmods, rlmods))
    assert isinstance(ours, type(theirs)), (type(ours).__mro__, type(theirs))
    assert str(ours).startswith(("EGreedyModule", "AdditiveGaussianModule",
                                 "OrnsteinUhlenbeckProcessModule", "ConsistentDropout")) or \
        isinstance(ours, KeyError)


def test_runtime_error_cases_are_value_or_type_errors_too():
    """Where torchrl raises RuntimeError, rlmods' error is also a ValueError or a TypeError."""
    for case in ["egreedy_eps_end_above_eps_init", "gaussian_called_before_its_spec_is_set",
                 "dropout_mask_without_input_or_shape", "dropout_primer_without_input_shape",
                 "egreedy_mask_allows_nothing", "ou_is_init_of_another_batch_shape"]:
        assert isinstance(_raised(lambda: ERROR_CASES[case](rlmods, rlmods)), InvalidValueError)
    for case in ["egreedy_without_spec", "ou_without_spec"]:
        assert isinstance(_raised(lambda: ERROR_CASES[case](rlmods, rlmods)), InvalidTypeError)


# --- the chapter's exploration-type table, against torchrl ---------------------------------------

ALL_TYPES = [None, ExplorationType.RANDOM, *DETERMINISTIC_TYPES]


def _action_module(name):
    def make(lib, data):
        spec = data.Bounded(-5.0, 5.0, (2,))
        return {"EGreedyModule": lambda: lib.EGreedyModule(spec, 0.5),
                "AdditiveGaussianModule": lambda: lib.AdditiveGaussianModule(spec),
                "OrnsteinUhlenbeckProcessModule": lambda: lib.OrnsteinUhlenbeckProcessModule(spec),
                }[name]()
    return make


def _changes_its_input(module, etype, td, key):
    with set_exploration_type(etype) if etype is not None else warnings.catch_warnings():
        out = module(td.clone())[key]
    return not torch.equal(out, td[key])


@pytest.mark.parametrize("etype", ALL_TYPES, ids=str)
@pytest.mark.parametrize("name", ["EGreedyModule", "AdditiveGaussianModule",
                                  "OrnsteinUhlenbeckProcessModule"])
def test_action_modules_explore_under_the_same_types_as_torchrl(name, etype):
    td = TensorDict({"action": torch.rand(64, 2), "is_init": torch.ones(64, 1, dtype=torch.bool)},
                    [64])
    ours = _changes_its_input(_action_module(name)(rlmods, rlmods), etype, td, "action")
    theirs = _changes_its_input(_action_module(name)(rl, rl_data), etype, td, "action")
    assert ours == theirs == (etype in (None, ExplorationType.RANDOM))


@pytest.mark.parametrize("etype", ALL_TYPES, ids=str)
@pytest.mark.parametrize("use_exploration_type", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_noisy_linear_is_noisy_under_the_same_types_and_modes_as_torchrl(etype, use_exploration_type,
                                                                         train):
    ours = NoisyLinear(4, 2, use_exploration_type=use_exploration_type).train(train)
    theirs = rl.NoisyLinear(4, 2, use_exploration_type=use_exploration_type).train(train)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 4)
    mean = torch.nn.functional.linear(x, theirs.weight_mu, theirs.bias_mu)
    with set_exploration_type(etype) if etype is not None else warnings.catch_warnings():
        out_ours, out_theirs = ours(x), theirs(x)
    torch.testing.assert_close(out_ours, out_theirs)
    noisy = etype is ExplorationType.RANDOM if use_exploration_type else train
    assert (not torch.equal(out_ours, mean)) == noisy


@pytest.mark.parametrize("etype", ALL_TYPES, ids=str)
@pytest.mark.parametrize("train", [True, False])
def test_consistent_dropout_module_follows_train_eval_like_torchrl(etype, train):
    td = TensorDict({"x": torch.ones(16, 8)}, [16])
    ours = ConsistentDropoutModule(0.5, in_keys="x").train(train)
    theirs = rl.ConsistentDropoutModule(0.5, in_keys="x").train(train)
    assert _changes_its_input(ours, etype, td, "x") == _changes_its_input(theirs, etype, td, "x") \
        == train


@pytest.mark.parametrize("name", ["EGreedyModule", "AdditiveGaussianModule",
                                  "OrnsteinUhlenbeckProcessModule"])
def test_spec_property_has_torchrl_keys_and_batch_shape(name):
    ours = getattr(rlmods, name)(Bounded(-1.0, 1.0, (4, 2))).spec
    theirs = getattr(rl, name)(rl_data.Bounded(-1.0, 1.0, (4, 2))).spec
    assert sorted(ours.keys()) == sorted(theirs.keys()) and ours.shape == theirs.shape == (4,)
    assert [ours[key] is None for key in sorted(ours.keys())] == \
        [theirs[key] is None for key in sorted(theirs.keys())]
    assert ours["action"].shape == (4, 2)


# ================================================================================================
# Tests that kill mutants mutation testing found surviving (tools/mutation.sh).
# ================================================================================================

def _mut_policy(spec=None):
    policy = rlmods.Actor(torch.nn.Linear(3, 2), spec=spec)
    return policy


# ---- device and dtype of the buffers -------------------------------------------------------

def test_device_argument_places_buffers_and_spec():
    egreedy = EGreedyModule(OneHot(3), device="meta")
    assert {b.device.type for b in egreedy.buffers()} == {"meta"}
    assert egreedy.spec["action"].device.type == "meta"
    gauss = AdditiveGaussianModule(Bounded(-1.0, 1.0, (2,)), device="meta")
    assert {n for n, b in gauss.named_buffers() if b.device.type == "meta"} == {
        "sigma_init", "sigma_end", "sigma", "mean", "std"}
    ou = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)), device="meta")
    assert {n for n, b in ou.named_buffers() if b.device.type == "meta"} == {
        "eps_init", "eps_end", "eps", "ou._empty_tensor_device"}
    lazy = NoisyLazyLinear(3, device="meta")
    assert {p.device.type for p in lazy.parameters()} == {"meta"}


def test_wrappers_forward_device():
    with pytest.warns(DeprecationWarning):
        gauss = AdditiveGaussianWrapper(_mut_policy(Bounded(-1.0, 1.0, (2,))), device="meta")
    assert {b.device.type for b in gauss.module[-1].buffers()} == {"meta"}
    with pytest.warns(DeprecationWarning):
        ou = OrnsteinUhlenbeckProcessWrapper(_mut_policy(Bounded(-1.0, 1.0, (2,))), device="meta")
    assert {b.device.type for b in ou.module[-1].buffers()} == {"meta"}


def test_eps_buffer_is_float32_whatever_the_default_dtype():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ours = EGreedyModule(OneHot(3)).eps.dtype
        theirs = tm.EGreedyModule(tdata.OneHot(3)).eps.dtype
    finally:
        torch.set_default_dtype(old)
    assert ours == theirs == torch.float32


def test_noisy_linear_dtype_reaches_every_parameter_and_buffer():
    layer = NoisyLinear(2, 3, dtype=torch.float64)
    assert {t.dtype for t in [*layer.parameters(), *layer.buffers()]} == {torch.float64}


# ---- schedules, defaults --------------------------------------------------------------------

def test_constant_and_one_step_schedules_are_allowed():
    module = EGreedyModule(OneHot(3), eps_init=0.5, eps_end=0.5, annealing_num_steps=1)
    module.step()
    assert float(module.eps) == 0.5
    zero = EGreedyModule(OneHot(3), eps_init=0.0, eps_end=0.0)
    assert float(zero.eps) == 0.0
    gauss = AdditiveGaussianModule(Bounded(-1.0, 1.0, (2,)), sigma_end=0.0, annealing_num_steps=1)
    gauss.step()
    assert float(gauss.sigma) == 0.0


def test_step_defaults_to_one_frame():
    module = EGreedyModule(OneHot(3), eps_init=1.0, eps_end=0.0, annealing_num_steps=10)
    module.step()
    assert_close(float(module.eps), 0.9)
    with pytest.warns(DeprecationWarning):
        wrapper = EGreedyWrapper(_mut_policy(OneHot(2)), eps_init=1.0, eps_end=0.0,
                                 annealing_num_steps=10)
    wrapper.step()
    assert_close(float(wrapper.module[-1].eps), 0.9)


def test_defaults_match_torchrl():
    ours = [EGreedyModule(OneHot(3)), AdditiveGaussianModule(Bounded(-1.0, 1.0, (2,))),
            OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)))]
    theirs = [tm.EGreedyModule(tdata.OneHot(3)),
              tm.AdditiveGaussianModule(tdata.Bounded(-1.0, 1.0, (2,))),
              tm.OrnsteinUhlenbeckProcessModule(tdata.Bounded(-1.0, 1.0, (2,)))]
    for a, b in zip(ours, theirs):
        assert a.annealing_num_steps == b.annealing_num_steps == 1000
    assert ours[1].safe is False
    assert ours[2].ou.theta == theirs[2].ou.theta == 0.15
    ou = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)), sigma=0.2, sigma_min=0.1)
    ref = tm.OrnsteinUhlenbeckProcessModule(tdata.Bounded(-1.0, 1.0, (2,)), sigma=0.2,
                                            sigma_min=0.1)
    assert ou.ou.m == pytest.approx(ref.ou.m, rel=1e-9)  # (sigma_min - sigma) / 1000


def test_repr_shows_the_schedule():
    module = EGreedyModule(OneHot(3), eps_end=0.12345678)
    assert repr(module) == ("EGreedyModule(eps=1.0000, eps_init=1.0, eps_end=0.123457, "
                            "annealing_num_steps=1000, annealing_progress=0.0%, "
                            "action_key='action')")


# ---- specs and messages ---------------------------------------------------------------------

def test_missing_spec_message():
    with pytest.raises(TypeError, match=r"^EGreedyModule: spec must be a TensorSpec \(the action "
                                        r"spec, e\.g\. env\.action_spec\), got None\.$"):
        EGreedyModule(None)


def test_composite_spec_with_other_keys_is_accepted():
    spec = Composite({"action": OneHot(3), "other": Unbounded(1)})
    module = EGreedyModule(spec)
    assert module.spec["action"] == OneHot(3)
    td = module(TensorDict({"action": torch.eye(3)[[0, 1]]}, [2]))
    assert td["action"].shape == (2, 3)


def test_composite_spec_without_the_action_names_the_owner():
    with pytest.raises(KeyError, match=r"EGreedyModule"):
        EGreedyModule(Composite({"other": OneHot(3)}))
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError, match=r"EGreedyWrapper"):
        EGreedyWrapper(_mut_policy(), spec=Composite({"other": OneHot(3)}))


def test_mask_needs_a_discrete_spec_message():
    with pytest.raises(TypeError, match=r"^EGreedyModule: action_mask_key needs a discrete spec "
                                        r"\(OneHot, Categorical, MultiOneHot, MultiCategorical\), "
                                        r"got Bounded\.$"):
        EGreedyModule(Bounded(-1.0, 1.0, (2,)), action_mask_key="mask")


def test_mask_key_is_an_in_key():
    assert EGreedyModule(OneHot(3), action_mask_key="mask").in_keys == ["action", "mask"]


def test_all_false_mask_rows_are_counted_with_two_batch_dims():
    module = EGreedyModule(Categorical(4), eps_init=1.0, action_mask_key="mask")
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2] = False
    td = TensorDict({"action": torch.zeros(2, 3, dtype=torch.long), "mask": mask}, [2, 3])
    with pytest.raises(ValueError, match=r"'mask' must allow at least one action in every row, "
                                         r"got 1 row\(s\) of all False\."):
        module(td)


def test_masked_random_actions_with_two_batch_dims_are_allowed():
    module = EGreedyModule(Categorical(4), eps_init=1.0, action_mask_key="mask")
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[..., 2] = True
    td = TensorDict({"action": torch.zeros(2, 3, dtype=torch.long), "mask": mask}, [2, 3])
    assert (module(td)["action"] == 2).all()
    assert module._action_spec.shape == ()  # the module's own spec is not masked


def test_gaussian_without_spec_message():
    module = AdditiveGaussianModule()
    with pytest.raises(ValueError, match=r"^AdditiveGaussianModule: spec must be set before the "
                                         r"first call \(pass it at construction or assign "
                                         r"module\.spec\), got None\.$"):
        module(TensorDict({"action": torch.zeros(2)}, []))


# ---- Ornstein-Uhlenbeck: the offset x0, is_init shapes, the warning --------------------------

def test_ou_offset_x0_exactly():
    module = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (1,)), sigma=0.0, x0=0.5,
                                            theta=0.15, mu=0.0, dt=0.01)
    td = TensorDict({"action": torch.zeros(1, 1), "is_init": torch.ones(1, 1, dtype=torch.bool)},
                    [1])
    td = module(td)
    first = 0.5 + 0.15 * (0.0 - 0.5) * 0.01
    assert_close(td["action"], torch.full((1, 1), first))
    assert_close(td["_ou_prev_noise"], torch.full((1, 1), first - 0.5))
    td["action"] = torch.zeros(1, 1)
    td["is_init"] = torch.zeros(1, 1, dtype=torch.bool)
    td = module(td)
    assert_close(td["action"], torch.full((1, 1), first * (1 - 0.15 * 0.01)))


def test_ou_tensor_x0_is_a_buffer_as_in_torchrl():
    x0 = torch.tensor([0.1, 0.2])
    ours = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)), x0=x0)
    theirs = tm.OrnsteinUhlenbeckProcessModule(tdata.Bounded(-1.0, 1.0, (2,)), x0=x0)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert_close(ours.state_dict()["ou.x0"], x0)


def test_ou_root_is_init_resets_a_nested_action_with_more_batch_dims():
    module = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)),
                                            action_key=("agents", "action"))
    td = TensorDict({"agents": TensorDict({"action": torch.zeros(4, 3, 2)}, [4, 3]),
                     "is_init": torch.ones(4, 1, dtype=torch.bool)}, [4])
    for _ in range(3):
        td = module(td)
        td["is_init"] = torch.zeros(4, 1, dtype=torch.bool)
    td["is_init"] = torch.tensor([[True], [False], [False], [False]])
    td = module(td)
    assert td["_ou_steps"].tolist() == [[1] * 3] + [[4] * 3] * 3


def test_ou_is_init_with_extra_dims_is_reduced_with_any():
    module = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (1,)))
    td = TensorDict({"action": torch.zeros(2, 3, 1),
                     "is_init": torch.ones(2, 3, 2, dtype=torch.bool)}, [2, 3])
    for _ in range(2):
        td = module(td)
        td["is_init"] = torch.zeros(2, 3, 2, dtype=torch.bool)
    is_init = torch.zeros(2, 3, 2, dtype=torch.bool)
    is_init[0, 1, 1] = True
    td["is_init"] = is_init
    td = module(td)
    assert td["_ou_steps"].tolist() == [[3, 1, 3], [3, 3, 3]]


def test_ou_missing_is_init_warning_text():
    module = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (1,)))
    with pytest.warns(UserWarning, match=r"found none: the noise never restarts\. Add "
                                         r"InitTracker\(\) to the environment\."):
        module(TensorDict({"action": torch.zeros(2, 1)}, [2]))


# ---- the deprecated wrappers -------------------------------------------------------------------

def test_deprecation_warning_names_the_wrapper_and_points_at_the_caller():
    cases = [(EGreedyWrapper, "EGreedyWrapper", OneHot(2)),
             (AdditiveGaussianWrapper, "AdditiveGaussianWrapper", Bounded(-1.0, 1.0, (2,))),
             (OrnsteinUhlenbeckProcessWrapper, "OrnsteinUhlenbeckProcessWrapper",
              Bounded(-1.0, 1.0, (2,)))]
    for cls, name, spec in cases:
        with pytest.warns(DeprecationWarning, match=rf"^{name} is deprecated") as record:
            cls(_mut_policy(spec))
        assert record[0].filename == __file__  # at the caller's line


def test_wrappers_take_the_spec_from_the_policy_and_name_themselves():
    for cls, spec in ((EGreedyWrapper, OneHot(2)),
                      (AdditiveGaussianWrapper, Bounded(-1.0, 1.0, (2,))),
                      (OrnsteinUhlenbeckProcessWrapper, Bounded(-1.0, 1.0, (2,)))):
        with pytest.warns(DeprecationWarning):
            wrapper = cls(_mut_policy(spec))
        assert wrapper.module[-1].spec["action"] == spec
        with pytest.warns(DeprecationWarning), pytest.raises(
                ValueError, match=rf"^{cls.__name__}: spec must be given \(or the policy must "
                                  rf"have one\), got None\.$"):
            cls(torch.nn.Identity())


def test_egreedy_wrapper_forwards_its_arguments():
    policy = rlmods.Actor(torch.nn.Linear(3, 2), out_keys=["act"], spec=Composite(act=OneHot(2)))
    with pytest.warns(DeprecationWarning):
        wrapper = EGreedyWrapper(policy, annealing_num_steps=10, action_key="act",
                                 action_mask_key="mask")
    module = wrapper.module[-1]
    assert module.annealing_num_steps == 10
    assert module.action_key == "act"
    assert module.action_mask_key == "mask"


def test_gaussian_wrapper_forwards_its_arguments():
    spec = Composite(act=Bounded(-1.0, 1.0, (2,)))
    policy = rlmods.Actor(torch.nn.Linear(3, 2), out_keys=["act"], spec=spec)
    with pytest.warns(DeprecationWarning):
        wrapper = AdditiveGaussianWrapper(policy, std=2.0, action_key="act")
    module = wrapper.module[-1]
    assert float(module.std) == 2.0 and module.action_key == "act"
    assert module.safe is True
    with pytest.warns(DeprecationWarning):
        assert AdditiveGaussianWrapper(policy, action_key="act", safe=False).module[-1].safe is False


def test_ou_wrapper_forwards_its_arguments():
    spec = Composite(act=Bounded(-1.0, 1.0, (2,)))
    policy = rlmods.Actor(torch.nn.Linear(3, 2), out_keys=["act"], spec=spec)
    with pytest.warns(DeprecationWarning):
        wrapper = OrnsteinUhlenbeckProcessWrapper(policy, key="act", x0=0.5, sigma=0.2,
                                                  sigma_min=0.1, n_steps_annealing=10,
                                                  is_init_key="start", safe=False)
    module = wrapper.module[-1]
    assert module.action_key == "act" and module.is_init_key == "start"
    assert module.safe is False
    assert float(module.ou.x0) == 0.5
    assert module.ou.sigma_min == 0.1
    assert module.ou.m == pytest.approx((0.1 - 0.2) / 10, rel=1e-9)
    with pytest.warns(DeprecationWarning):
        other = OrnsteinUhlenbeckProcessWrapper(policy, action_key="act")
    assert other.module[-1].action_key == "act"
    with pytest.warns(DeprecationWarning):
        default = OrnsteinUhlenbeckProcessWrapper(_mut_policy(Bounded(-1.0, 1.0, (2,))),
                                                  sigma=0.2, sigma_min=0.1)
    assert default.module[-1].ou.theta == 0.15
    assert default.module[-1].ou.m == pytest.approx((0.1 - 0.2) / 1000, rel=1e-9)


# ---- ConsistentDropout(Module) ------------------------------------------------------------------

def test_consistent_dropout_accepts_p_zero_and_one_as_torchrl():
    for p in (0.0, 1.0):
        tm.ConsistentDropout(p)
        drop = ConsistentDropout(p)
        y, mask = drop(torch.ones(8))
        assert mask.shape == (8,)
    ConsistentDropoutModule(0.0, in_keys="x")


def test_make_mask_in_eval_mode_is_all_ones_as_torchrl():
    ours, theirs = ConsistentDropout(0.5), tm.ConsistentDropout(0.5)
    ours.eval(), theirs.eval()
    assert torch.equal(ours.make_mask(shape=(50,)), theirs.make_mask(shape=(50,)))
    assert torch.equal(ours.make_mask(shape=(50,)), torch.ones(50))


def test_consistent_dropout_module_keys():
    module = ConsistentDropoutModule(0.5, in_keys="x", out_keys="y")
    assert module.out_keys == ["y", "mask_x"]
    module = ConsistentDropoutModule(0.5, in_keys=["x", "m"], out_keys=["y", "n"])
    assert module.out_keys == ["y", "n"]
    td = module(TensorDict({"x": torch.ones(3, 4)}, [3]))
    assert "y" in td.keys() and "n" in td.keys()
    with pytest.raises(ValueError, match=r"^ConsistentDropoutModule: in_keys and out_keys must be "
                                         r"a key or \[value, mask\]"):
        ConsistentDropoutModule(0.5, in_keys=["x", "m"], out_keys=["a", "b", "c"])


def test_consistent_dropout_module_missing_input_message():
    module = ConsistentDropoutModule(0.5, in_keys="x")
    with pytest.raises(KeyError, match=r"ConsistentDropoutModule: expected key 'x'"):
        module(TensorDict({"z": torch.ones(3)}, [3]))


def test_primer_needs_input_shape_message():
    with pytest.raises(ValueError, match=r"^ConsistentDropoutModule: input_shape must be given at "
                                         r"construction to build a primer, got None\.$"):
        ConsistentDropoutModule(0.5, in_keys="x").make_tensordict_primer()


@pytest.mark.parametrize("dtype", [None, torch.float64])
def test_primer_spec_and_value_dtype(dtype):
    module = ConsistentDropoutModule(0.5, in_keys="x", input_shape=(4,), input_dtype=dtype)
    primer = module.make_tensordict_primer()
    expected = torch.get_default_dtype() if dtype is None else dtype
    assert "mask_x" in primer.primers.keys()
    assert primer.primers["mask_x"].dtype == expected
    assert primer._value("mask_x", primer.primers["mask_x"]).dtype == expected


# ---- NoisyLinear, NoisyLazyLinear ---------------------------------------------------------------

def test_noisy_linear_accepts_zero_std_init():
    layer = NoisyLinear(2, 3, std_init=0.0)
    assert float(layer.weight_sigma.abs().max()) == 0.0


def test_noisy_lazy_linear_forwards_its_arguments():
    lazy = NoisyLazyLinear(3, std_init=0.1, use_exploration_type=False)
    lazy(torch.ones(2, 4, 5))  # three dims: in_features is the last one
    assert lazy.in_features == 5
    assert lazy.bias_mu is not None  # bias defaults to True
    assert_close(lazy.weight_sigma, torch.full((3, 5), 0.1 / math.sqrt(5)))
    lazy.train()
    assert not torch.equal(lazy.weight, lazy.weight_mu)  # noise follows training mode
    lazy.eval()
    assert torch.equal(lazy.weight, lazy.weight_mu)


def test_one_element_tuple_action_key():
    module = EGreedyModule(OneHot(3), action_key=("action",))
    td = module(TensorDict({"action": torch.eye(3)[[0, 1]]}, [2]))
    assert td["action"].shape == (2, 3)


def test_ou_deeply_nested_action_uses_its_direct_parent_batch_shape():
    module = OrnsteinUhlenbeckProcessModule(Bounded(-1.0, 1.0, (2,)),
                                            action_key=("a", "b", "action"))
    td = TensorDict({"a": TensorDict({"b": TensorDict({"action": torch.zeros(2, 3, 4, 2)},
                                                       [2, 3, 4])}, [2, 3]),
                     "is_init": torch.ones(2, 1, dtype=torch.bool)}, [2])
    td = module(td)
    assert td["_ou_steps"].shape == (2, 3, 4)
    assert td["_ou_prev_noise"].shape == (2, 3, 4, 2)
