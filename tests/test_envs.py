"""Environments: the reset/step/rollout contract, errors, and torchrl.envs as the oracle."""

import gymnasium
import numpy as np
import pytest
import tensordict.nn as tdnn
import torch
import torchrl.envs as trl_envs
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from tensordict.nn.probabilistic import interaction_type
from torchrl.data import Binary as TorchrlBinary
from torchrl.data import Bounded as TorchrlBounded
from torchrl.data import Categorical as TorchrlCategorical
from torchrl.data import Composite as TorchrlComposite
from torchrl.data import Unbounded as TorchrlUnbounded
from torchrl.envs.libs.gym import _gym_to_torchrl_spec_transform

import rlmods
from rlmods import (Bounded, Categorical, Composite, EnvBase, GymEnv, InitTracker, OneHot,
                    TensorDictPrimer, TransformedEnv, Unbounded, step_mdp)
from rlmods import InvalidValueError, set_validate_args
from rlmods import _keys
from rlmods import envs as rl_envs


def test_exploration_types_are_tensordicts_objects():
    assert rlmods.ExplorationType is tdnn.InteractionType is trl_envs.ExplorationType
    assert rlmods.set_exploration_type is tdnn.set_interaction_type
    assert rlmods.exploration_type is interaction_type
    with rlmods.set_exploration_type(rlmods.ExplorationType.MODE):
        assert rlmods.exploration_type() is rlmods.ExplorationType.MODE


@pytest.mark.parametrize("name,kwargs", [("Pendulum-v1", {}), ("CartPole-v1", {}),
                                         ("CartPole-v1", {"categorical_action_encoding": True})])
def test_gym_specs_match_torchrl(name, kwargs):
    ours, theirs = GymEnv(name, **kwargs), trl_envs.GymEnv(name, **kwargs)
    # torchrl names Bounded instances BoundedContinuous / BoundedDiscrete.
    assert type(theirs.action_spec).__name__.startswith(type(ours.action_spec).__name__)
    assert ours.action_spec.shape == theirs.action_spec.shape
    assert ours.action_spec.dtype == theirs.action_spec.dtype
    for key in theirs.observation_spec.keys(True, True):
        mine, ref = ours.observation_spec[key], theirs.observation_spec[key]
        assert (mine.shape, mine.dtype) == (ref.shape, ref.dtype)
        if hasattr(ref, "low"):
            torch.testing.assert_close(mine.low, ref.low)
            torch.testing.assert_close(mine.high, ref.high)
    assert set(ours.done_keys) == set(theirs.done_keys)
    assert ours.reward_spec.shape == theirs.reward_spec.shape and ours.reward_spec.dtype == theirs.reward_spec.dtype


@pytest.mark.parametrize("name", ["Pendulum-v1", "CartPole-v1"])
def test_seeded_rollout_matches_torchrl(name):
    ours, theirs = GymEnv(name), trl_envs.GymEnv(name)
    assert ours.set_seed(7) == theirs.set_seed(7)
    # Same actions in both: replay torchrl's random actions in ours.
    torch.manual_seed(0)
    ref = theirs.rollout(30, break_when_any_done=False)
    actions = iter(ref["action"])
    mine = ours.rollout(30, policy=lambda td: td.set("action", next(actions)), break_when_any_done=False)
    assert mine.batch_size == ref.batch_size
    assert set(mine.keys(True, True)) == set(ref.keys(True, True))
    for key in ref.keys(True, True):
        torch.testing.assert_close(mine[key], ref[key], msg=str(key))


def test_rollout_layout_and_break_when_done():
    env = GymEnv("CartPole-v1")
    env.set_seed(0)
    rollout = env.rollout(500)
    assert rollout["next", "done"][-1].item() and not rollout["next", "done"][:-1].any()
    # The observation after step t is the observation at step t + 1.
    torch.testing.assert_close(rollout["next", "observation"][:-1], rollout["observation"][1:])


def test_rollout_auto_resets_when_not_breaking():
    env = GymEnv("CartPole-v1")
    env.set_seed(0)
    rollout = env.rollout(100, break_when_any_done=False)
    assert len(rollout) == 100 and rollout["next", "done"].sum() >= 2
    first_done = rollout["next", "done"].squeeze(-1).nonzero()[0].item()
    assert not rollout["done"][first_done + 1].item()  # a fresh episode starts


def test_set_truncated_marks_the_last_step():
    rollout = GymEnv("Pendulum-v1").rollout(5, set_truncated=True)
    assert rollout["next", "truncated"].squeeze(-1).tolist() == [False] * 4 + [True]
    assert rollout["next", "done"][-1].item()


def test_step_mdp():
    td = TensorDict({"observation": torch.zeros(2), "action": torch.ones(1), "hidden": torch.ones(3),
                     "next": {"observation": torch.ones(2), "reward": torch.ones(1),
                              "done": torch.zeros(1, dtype=torch.bool)}})
    out = step_mdp(td)
    assert sorted(out.keys()) == ["done", "hidden", "observation"]
    assert out["observation"].tolist() == [1.0, 1.0]


class CountingEnv(EnvBase):
    """A batched env: the observation counts steps; episode ends after `limit` steps."""

    def __init__(self, batch_size=(3,), limit=3):
        super().__init__(batch_size=batch_size)
        self.limit = limit
        self.observation_spec = Composite(observation=Unbounded((*batch_size, 1)), shape=batch_size)
        self.action_spec = Bounded(-1.0, 1.0, (*batch_size, 1))
        self.reward_spec = Unbounded((*batch_size, 1))

    def _reset(self, tensordict=None, **kwargs):
        return TensorDict({"observation": torch.zeros(*self.batch_size, 1)}, self.batch_size)

    def _step(self, tensordict):
        count = tensordict["observation"] + 1
        return TensorDict({"observation": count, "reward": tensordict["action"].clone(),
                           "done": count >= self.limit}, self.batch_size)

    def _set_seed(self, seed):
        pass


def test_batched_env_partial_reset_keeps_running_entries():
    env = CountingEnv(limit=2)
    td = env.reset()
    td["observation"] = torch.tensor([[0.0], [1.0], [1.0]])  # entries 1, 2 are one step ahead
    td["action"] = torch.zeros(3, 1)
    td, root = env.step_and_maybe_reset(td)
    assert td["next", "done"].squeeze(-1).tolist() == [False, True, True]
    assert root["observation"].squeeze(-1).tolist() == [1.0, 0.0, 0.0]
    assert "terminated" in td["next"].keys()  # filled from done


def test_batched_rollout_stacks_time_after_batch_dims():
    rollout = CountingEnv().rollout(4, break_when_any_done=False)
    assert rollout.batch_size == (3, 4)
    assert rollout["observation"][0].squeeze(-1).tolist() == [0.0, 1.0, 2.0, 0.0]


def test_transformed_env_with_init_tracker_and_primer():
    env = TransformedEnv(GymEnv("Pendulum-v1"), InitTracker())
    env.append_transform(TensorDictPrimer(hidden=Unbounded((2, 4))))
    assert "is_init" in env.observation_spec.keys() and env.observation_spec["hidden"].shape == (2, 4)
    env.set_seed(0)
    rollout = env.rollout(4)
    assert rollout["is_init"].squeeze(-1).tolist() == [True, False, False, False]
    assert rollout["next", "hidden"].shape == (4, 2, 4) and not rollout["next", "hidden"].any()
    theirs = trl_envs.TransformedEnv(trl_envs.GymEnv("Pendulum-v1"), trl_envs.InitTracker())
    assert set(theirs.rollout(4).keys(True, True)) | {"hidden", ("next", "hidden")} == set(
        rollout.keys(True, True))


def test_primer_on_a_batched_env_expands_and_is_carried():
    env = TransformedEnv(CountingEnv(), TensorDictPrimer(hidden=Unbounded(2), default_value=1.0))
    assert env.observation_spec["hidden"].shape == (3, 2)
    rollout = env.rollout(2)
    assert rollout["next", "hidden"].shape == (3, 2, 2) and (rollout["next", "hidden"] == 1).all()


def test_random_primer():
    env = TransformedEnv(CountingEnv(), TensorDictPrimer(hidden=Bounded(2.0, 3.0, (1,)), random=True))
    values = env.reset()["hidden"]
    assert ((values >= 2) & (values <= 3)).all()


def test_rollout_with_a_tensordict_policy():
    env = GymEnv("Pendulum-v1")
    policy = TensorDictModule(torch.nn.LazyLinear(1), in_keys=["observation"], out_keys=["action"])
    policy(env.reset())  # materialise the lazy layer
    with torch.no_grad():
        policy.module.weight.zero_()
        policy.module.bias.fill_(0.5)
    rollout = env.rollout(3, policy)
    assert rollout["action"].squeeze(-1).tolist() == [0.5, 0.5, 0.5]


# ---- errors -----------------------------------------------------------------------

def test_unknown_gym_id_is_a_clear_error():
    with pytest.raises(ValueError, match=r"GymEnv: env_name must be a registered gymnasium id, "
                                         r"got 'Pendulum-v9'; close matches: \['Pendulum-v1'"):
        GymEnv("Pendulum-v9")


def test_action_outside_the_spec_is_a_clear_error():
    env = GymEnv("Pendulum-v1")
    td = env.reset().set("action", torch.tensor([5.0]))
    with pytest.raises(ValueError, match=r"GymEnv: 'action' must lie in the action spec .*got \[5.0\]"):
        env.step(td)
    td["action"] = torch.zeros(2)
    with pytest.raises(ValueError, match=r"GymEnv: 'action' must have shape \(1,\), got shape \(2,\)"):
        env.step(td)


def test_discrete_action_must_survive_the_cast():
    env = GymEnv("CartPole-v1", categorical_action_encoding=True)
    with pytest.raises(ValueError, match="GymEnv: 'action' must lie in the action spec"):
        env.step(env.reset().set("action", torch.tensor(0.5)))
    with pytest.raises(ValueError, match="GymEnv: 'action' must lie in the action spec"):
        GymEnv("CartPole-v1").step(env.reset().set("action", torch.tensor([1, 1])))


def test_missing_action_is_a_key_error():
    env = GymEnv("Pendulum-v1")
    with pytest.raises(KeyError, match="GymEnv: expected key 'action' in the input tensordict"):
        env.step(env.reset())


def test_policy_that_does_not_write_the_action():
    env = GymEnv("Pendulum-v1")
    policy = TensorDictModule(torch.nn.Linear(3, 1), in_keys=["observation"], out_keys=["act"])
    with pytest.raises(KeyError, match=r"GymEnv.rollout: the policy must write the action key 'action', "
                                       r"it wrote keys \['act', 'done', 'observation'"):
        env.rollout(3, policy)


def test_rollout_without_reset_needs_a_tensordict():
    with pytest.raises(ValueError, match="GymEnv.rollout: with auto_reset=False a tensordict"):
        GymEnv("Pendulum-v1").rollout(3, auto_reset=False)


def test_primer_random_and_default_value_conflict():
    with pytest.raises(ValueError, match="TensorDictPrimer: give random=True or a default_value"):
        TensorDictPrimer(hidden=Unbounded(2), random=True, default_value=1.0)


def test_env_base_without_step_says_what_to_implement():
    class Half(EnvBase):
        pass

    with pytest.raises(NotImplementedError, match=r"Half must implement _reset\(tensordict\)"):
        Half().reset()


def test_onehot_and_categorical_actions_step_gym():
    for kwargs in [{}, {"categorical_action_encoding": True}]:
        env = GymEnv("CartPole-v1", **kwargs)
        td = env.rand_step(env.reset())
        assert td["next", "reward"].item() == 1.0
    assert isinstance(GymEnv("CartPole-v1").action_spec, OneHot)
    assert isinstance(GymEnv("CartPole-v1", categorical_action_encoding=True).action_spec, Categorical)


def test_unsupported_gym_space_is_a_clear_error():
    from gymnasium import spaces

    from rlmods.envs import _space_to_spec

    with pytest.raises(TypeError, match="GymEnv: cannot convert the gymnasium space Text"):
        _space_to_spec(spaces.Text(5))


def test_env_base_names_each_missing_method_and_is_not_callable():
    class Resets(EnvBase):
        def _reset(self, tensordict=None, **kwargs):
            return TensorDict({"observation": torch.zeros(1)})

    env = Resets()
    env.action_spec = Bounded(-1.0, 1.0, (1,))
    with pytest.raises(NotImplementedError, match=r"Resets must implement _step\(tensordict\)"):
        env.step(env.reset().set("action", torch.zeros(1)))
    with pytest.raises(NotImplementedError, match=r"Resets must implement _set_seed\(seed\)"):
        env.set_seed(0)
    with pytest.raises(NotImplementedError, match=r"Resets: call step\(\), reset\(\) or rollout\(\)"):
        env(TensorDict())


# ---- issue 9: drop-in compatibility ----------------------------------------------------


def test_interaction_type_names_are_tensordicts():
    assert rlmods.InteractionType is tdnn.InteractionType is rl_envs.InteractionType
    assert rlmods.set_interaction_type is tdnn.set_interaction_type
    assert rlmods.interaction_type is interaction_type
    with rlmods.set_interaction_type(rlmods.InteractionType.RANDOM):
        assert rlmods.interaction_type() is rlmods.InteractionType.RANDOM


def test_envs_reads_its_keys_from_the_keys_module():
    for name in ("ACTION", "OBSERVATION", "REWARD", "NEXT", "DONE", "TERMINATED", "TRUNCATED",
                 "IS_INIT"):
        assert getattr(rl_envs, name) is getattr(_keys, name)


@pytest.mark.parametrize("name", ["Pendulum-v1", "CartPole-v1"])
def test_frame_skip_matches_torchrl(name):
    ours, theirs = GymEnv(name, frame_skip=3), trl_envs.GymEnv(name, frame_skip=3)
    assert ours.set_seed(3) == theirs.set_seed(3)
    torch.manual_seed(0)
    ref = theirs.rollout(40, break_when_any_done=False)
    actions = iter(ref["action"])
    mine = ours.rollout(40, policy=lambda td: td.set("action", next(actions)),
                        break_when_any_done=False)
    for key in ref.keys(True, True):
        torch.testing.assert_close(mine[key], ref[key], msg=str(key))
    plain = GymEnv(name)
    plain.set_seed(3)
    single = plain.rollout(3, policy=lambda td: td.set("action", ref["action"][0]))
    if name == "Pendulum-v1":  # one skipped step is three plain steps, rewards summed
        torch.testing.assert_close(mine["next", "observation"][0], single["next", "observation"][-1])
        torch.testing.assert_close(mine["next", "reward"][0], single["next", "reward"].sum(0))


def test_frame_skip_stops_at_done():
    env = GymEnv("CartPole-v1", frame_skip=4)
    env.set_seed(0)
    rollout = env.rollout(50)  # stops at the first done
    # Each step sums up to 4 rewards of 1; the last one may stop early at the done.
    assert (rollout["next", "reward"][:-1] == 4).all() and rollout["next", "reward"][-1] <= 4
    assert rollout["next", "done"][-1].item()


@pytest.mark.parametrize("frame_skip", [0, -1, 2.0])
def test_frame_skip_must_be_a_positive_int(frame_skip):
    with pytest.raises(ValueError, match="GymEnv: frame_skip must be a positive int"):
        GymEnv("Pendulum-v1", frame_skip=frame_skip)


class _BitsEnv(gymnasium.Env):
    """A tiny gymnasium env with MultiBinary spaces: observation = the last action's bits."""

    def __init__(self, obs_shape=(3,)):
        n = obs_shape[0] if len(obs_shape) == 1 else list(obs_shape)
        self.observation_space = gymnasium.spaces.MultiBinary(n)
        self.action_space = gymnasium.spaces.MultiBinary(int(np.prod(obs_shape)))
        self.obs_shape = obs_shape

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.obs_shape, dtype=np.int8), {}

    def step(self, action):
        bits = np.asarray(action, dtype=np.int8).reshape(self.obs_shape)
        return bits, float(bits.sum()), False, False, {}


gymnasium.register("RlmodsBits-v0", entry_point=_BitsEnv, max_episode_steps=5)
gymnasium.register("RlmodsBits2d-v0", entry_point=_BitsEnv, kwargs={"obs_shape": (2, 3)},
                   max_episode_steps=5)


def test_multibinary_spaces_match_torchrl():
    space = gymnasium.spaces.MultiBinary(3)
    ours, theirs = rl_envs._space_to_spec(space), _gym_to_torchrl_spec_transform(space)
    assert isinstance(theirs, TorchrlBinary) and type(ours).__name__ == "Binary"
    assert (ours.shape, ours.dtype) == (theirs.shape, theirs.dtype)
    ours_env, theirs_env = GymEnv("RlmodsBits-v0"), trl_envs.GymEnv("RlmodsBits-v0")
    torch.manual_seed(0)
    ref = theirs_env.rollout(5)
    actions = iter(ref["action"])
    mine = ours_env.rollout(5, policy=lambda td: td.set("action", next(actions)))
    for key in ref.keys(True, True):
        torch.testing.assert_close(mine[key], ref[key], msg=str(key))


@pytest.mark.torchrl_bug
def test_torchrl_rejects_a_2d_multibinary_space():
    with pytest.raises(TypeError, match="int"):
        _gym_to_torchrl_spec_transform(gymnasium.spaces.MultiBinary([2, 3]))


def test_2d_multibinary_space_better_than_torchrl():
    spec = rl_envs._space_to_spec(gymnasium.spaces.MultiBinary([2, 3]))
    assert spec.shape == (2, 3) and spec.dtype == torch.int8
    env = GymEnv("RlmodsBits2d-v0")
    rollout = env.rollout(5)
    assert rollout["next", "observation"].shape == (5, 2, 3)
    torch.testing.assert_close(rollout["next", "observation"].reshape(5, 6), rollout["action"])
    assert env.observation_spec["observation"].is_in(rollout["next", "observation"][0])


def _torchrl_counting_env(limits):
    """torchrl's twin of CountingEnv, with a step limit per entry."""

    class TorchrlCounting(trl_envs.EnvBase):
        def __init__(self):
            super().__init__(batch_size=(len(limits),))
            self.limits = torch.tensor(limits, dtype=torch.float32).unsqueeze(-1)
            self.observation_spec = TorchrlComposite(
                observation=TorchrlUnbounded((len(limits), 1)), shape=(len(limits),))
            self.action_spec = TorchrlBounded(-1.0, 1.0, (len(limits), 1))
            self.reward_spec = TorchrlUnbounded((len(limits), 1))

        def _reset(self, tensordict=None, **kwargs):
            return TensorDict({"observation": torch.zeros(len(limits), 1),
                               "done": torch.zeros(len(limits), 1, dtype=torch.bool),
                               "terminated": torch.zeros(len(limits), 1, dtype=torch.bool)},
                              self.batch_size)

        def _step(self, tensordict):
            count = tensordict["observation"] + 1
            done = count == self.limits
            return TensorDict({"observation": count, "reward": tensordict["action"].clone(),
                               "done": done, "terminated": done.clone()}, self.batch_size)

        def _set_seed(self, seed):
            pass

    return TorchrlCounting()


class LimitsEnv(CountingEnv):
    """CountingEnv with a step limit per entry, done only at the limit (not after it)."""

    def __init__(self, limits):
        super().__init__(batch_size=(len(limits),))
        self.limit = torch.tensor(limits, dtype=torch.float32).unsqueeze(-1)

    def _step(self, tensordict):
        out = super()._step(tensordict)
        return out.set("done", out["observation"] == self.limit)


@pytest.mark.parametrize("flags", [{"break_when_all_done": True},
                                   {"break_when_any_done": True},
                                   {"break_when_any_done": False}])
def test_batched_rollout_break_flags_match_torchrl(flags):
    limits = [2, 4, 3]
    ours, theirs = LimitsEnv(limits), _torchrl_counting_env(limits)
    actions = torch.linspace(-1, 1, 6 * 3).reshape(6, 3, 1)
    ref = theirs.rollout(6, policy=_replay(actions), **flags)
    mine = ours.rollout(6, policy=_replay(actions), **flags)
    assert mine.batch_size == ref.batch_size
    for key in ref.keys(True, True):
        torch.testing.assert_close(mine[key], ref[key], msg=str(key))


def _replay(actions):
    steps = iter(actions)
    return lambda td: td.set("action", next(steps))


def test_break_when_all_done_repeats_finished_entries():
    rollout = LimitsEnv([2, 4, 3]).rollout(10, break_when_all_done=True)
    assert rollout.batch_size == (3, 4)  # stops when the longest entry is done
    # Entry 0 ended at its 2nd step; its later rows repeat that transition.
    assert rollout["next", "observation"][0].squeeze(-1).tolist() == [1.0, 2.0, 2.0, 2.0]
    assert rollout["next", "done"][0].squeeze(-1).tolist() == [False, True, True, True]


def test_both_break_flags_is_a_type_error():
    with pytest.raises(TypeError, match="break_when_any_done and break_when_all_done cannot both"):
        CountingEnv().rollout(3, break_when_any_done=True, break_when_all_done=True)


def test_rollout_out_matches_torchrl():
    ours, theirs = GymEnv("Pendulum-v1"), trl_envs.GymEnv("Pendulum-v1")
    ours.set_seed(0), theirs.set_seed(0)
    actions = torch.linspace(-2, 2, 4).reshape(4, 1)
    ref = theirs.rollout(4, policy=_replay(actions), return_contiguous=True)
    buffer = ref.clone().zero_()
    mine = ours.rollout(4, policy=_replay(actions), out=buffer, return_contiguous=True)
    assert mine is buffer
    for key in ref.keys(True, True):
        torch.testing.assert_close(buffer[key], ref[key], msg=str(key))


def test_callback_sees_the_next_root_like_torchrl():
    seen = {"ours": [], "theirs": []}
    for name, env in (("ours", LimitsEnv([9, 9, 9])), ("theirs", _torchrl_counting_env([9, 9, 9]))):
        env.rollout(4, callback=lambda e, td, name=name: seen[name].append(td["observation"].clone()))
    assert len(seen["ours"]) == len(seen["theirs"]) == 3
    for mine, ref in zip(seen["ours"], seen["theirs"]):
        torch.testing.assert_close(mine, ref)


# ---- the value checks and run_type_checks ---------------------------------------------

def test_action_value_check_follows_validate_args():
    env = GymEnv("Pendulum-v1")
    outside = env.reset().set("action", torch.tensor([5.0]))
    with set_validate_args(False):
        env.step(outside.clone())  # the value check is off: gymnasium clips the action
        with pytest.raises(ValueError, match=r"GymEnv: 'action' must have shape \(1,\)"):
            env.step(env.reset().set("action", torch.zeros(2)))  # shape checks stay on
        checked = GymEnv("Pendulum-v1")
        checked.run_type_checks = True  # forces the value check back on
        with pytest.raises(ValueError, match="GymEnv: 'action' must lie in the action spec"):
            checked.step(checked.reset().set("action", torch.tensor([5.0])))
    with pytest.raises(ValueError, match="GymEnv: 'action' must lie in the action spec"):
        env.step(outside)


class _Float64Env(CountingEnv):
    def _step(self, tensordict):
        return super()._step(tensordict).set("observation", torch.zeros(3, 1, dtype=torch.float64))


def test_run_type_checks_checks_output_dtypes():
    unchecked = _Float64Env()
    unchecked.rand_step(unchecked.reset())  # not checked by default
    env = _Float64Env()
    env.run_type_checks = True
    with pytest.raises(TypeError, match=r"_Float64Env: 'observation' must have dtype torch.float32"):
        env.rand_step(env.reset())


class _DoneAtResetEnv(CountingEnv):
    def _reset(self, tensordict=None, **kwargs):
        return super()._reset(tensordict).set("done", torch.ones(3, 1, dtype=torch.bool))


def test_done_after_reset_is_an_error_unless_allowed():
    with pytest.raises(InvalidValueError, match="_DoneAtResetEnv: 'done' must be False after reset"):
        _DoneAtResetEnv().reset()
    env = _DoneAtResetEnv()
    env.allow_done_after_reset = True
    assert env.reset()["done"].all()


def test_done_after_reset_checks_only_the_entries_asked_to_reset():
    class HalfDone(CountingEnv):  # entries 1 and 2 come back done from _reset
        def _reset(self, tensordict=None, **kwargs):
            done = torch.tensor([[False], [True], [True]])
            return super()._reset(tensordict).set("done", done)

    env = HalfDone()
    td = TensorDict({"observation": torch.ones(3, 1), "done": torch.ones(3, 1, dtype=torch.bool)}, [3])
    env.reset(td.clone().set("_reset", torch.tensor([[True], [False], [False]])))
    with pytest.raises(InvalidValueError, match="HalfDone: 'done' must be False after reset"):
        env.reset(td.clone().set("_reset", torch.tensor([[False], [True], [False]])))


@pytest.mark.parametrize("make,match", [
    (lambda: EnvBase(auto_reset=True), r"EnvBase: auto_reset=True \(an env that resets itself"),
    (lambda: GymEnv("Pendulum-v1").rollout(3, auto_cast_to_device=True),
     "GymEnv.rollout: auto_cast_to_device=True is not supported"),
    (lambda: CountingEnv().rollout(3, set_truncated=True),
     r"CountingEnv.rollout: set_truncated=True needs a 'truncated' done key"),
    (lambda: TransformedEnv(GymEnv("Pendulum-v1"), device="meta"),
     "TransformedEnv: device must be the base env's"),
    (lambda: TransformedEnv(GymEnv("Pendulum-v1"), auto_unwrap=True),
     "TransformedEnv: auto_unwrap=True is not supported"),
    (lambda: TensorDictPrimer(hidden=Unbounded(2), reset_key="_reset"),
     "TensorDictPrimer: reset_key is not supported, got reset_key='_reset'"),
    (lambda: TensorDictPrimer(hidden=Unbounded(2), expand_specs=False),
     "TensorDictPrimer: expand_specs is not supported, got expand_specs=False"),
    (lambda: TensorDictPrimer(hidden=Unbounded(2), call_before_env_reset=True),
     "TensorDictPrimer: call_before_env_reset is not supported"),
    (lambda: TensorDictPrimer(hidden=Unbounded(2), single_default_value=True),
     "TensorDictPrimer: single_default_value is not supported"),
])
def test_unsupported_torchrl_arguments_are_rejected(make, match):
    with pytest.raises(InvalidValueError, match=match):
        make()


def test_transformed_env_rejects_unknown_keyword_arguments():
    with pytest.raises(TypeError, match=r"TransformedEnv: unexpected keyword arguments "
                                        r"\['cach_specs', 'transfrom'\]"):
        TransformedEnv(GymEnv("Pendulum-v1"), cach_specs=True, transfrom=InitTracker())
    env = TransformedEnv(GymEnv("Pendulum-v1"), InitTracker(), run_type_checks=True)
    assert env.run_type_checks


def test_gym_reset_passes_keyword_arguments_to_gymnasium():
    env = GymEnv("CartPole-v1")
    low = env.reset(seed=0, options={"low": 0.0, "high": 0.0})["observation"]
    assert (low == 0).all()
    with pytest.raises(TypeError, match="unexpected keyword argument 'optoins'"):
        env.reset(optoins={})


def test_gym_env_on_a_device_puts_specs_and_tensors_there():
    env = GymEnv("Pendulum-v1", device="meta")
    assert env.action_spec.device.type == "meta" and env.done_spec.device.type == "meta"


def test_gym_env_batch_size_must_be_empty():
    with pytest.raises(ValueError, match=r"GymEnv: batch_size must be empty .*got \(3,\)"):
        GymEnv("Pendulum-v1", batch_size=[3])


# ---- exception types: what a torchrl user's except clause catches ----------------------

def _torchrl_done_at_reset():
    env = _torchrl_counting_env([3, 3, 3])
    env._reset = lambda tensordict=None, **kw: TensorDict(
        {"observation": torch.zeros(3, 1), "done": torch.ones(3, 1, dtype=torch.bool),
         "terminated": torch.ones(3, 1, dtype=torch.bool)}, [3])
    return env


def _torchrl_float64_env():
    env = _torchrl_counting_env([3, 3, 3])
    step = env._step
    env._step = lambda td: step(td).set("observation", torch.zeros(3, 1, dtype=torch.float64))
    return env


def _float64_step(env):
    env.run_type_checks = True
    return env.rand_step(env.reset())


ERROR_CASES = {
    "unknown gym id": (lambda lib: lib.GymEnv("Pendulum-v9")),
    "step without an action": (lambda lib: (lambda e: e.step(e.reset()))(lib.GymEnv("Pendulum-v1"))),
    "policy writes no action": (lambda lib: lib.GymEnv("Pendulum-v1").rollout(3, TensorDictModule(
        torch.nn.Linear(3, 1), in_keys=["observation"], out_keys=["act"]))),
    "rollout without reset or tensordict": (
        lambda lib: lib.GymEnv("Pendulum-v1").rollout(3, auto_reset=False)),
    "primer random and default_value": (lambda lib: lib.TensorDictPrimer(
        hidden=(Unbounded if lib is rl_envs else TorchrlUnbounded)(2), random=True,
        default_value=1.0)),
    "transformed env typo": (lambda lib: lib.TransformedEnv(lib.GymEnv("Pendulum-v1"),
                                                            cach_specs=True)),
    "done after reset": (lambda lib: (_DoneAtResetEnv() if lib is rl_envs
                                      else _torchrl_done_at_reset()).reset()),
    "run_type_checks: an output of the wrong dtype": (lambda lib: _float64_step(
        _Float64Env() if lib is rl_envs else _torchrl_float64_env())),
    "transform without _apply_transform": (
        lambda lib: lib.Transform(["a"], ["b"])(TensorDict(a=torch.ones(1)))),
    "transform whose in_key is missing": (
        lambda lib: _scale_transform(lib)(TensorDict(other=torch.ones(1)))),
    "transform with fewer out_keys than in_keys": (
        lambda lib: lib.Transform(in_keys=["a"])(TensorDict(a=torch.ones(1)))),
    "rollout with a policy and actions": (lambda lib: lib.GymEnv("Pendulum-v1").rollout(
        3, policy=lambda td: td, actions=[torch.zeros(1)] * 3)),
    "adding to a locked spec": (lambda lib: lib.GymEnv("Pendulum-v1").observation_spec.set(
        "extra", (Unbounded if lib is rl_envs else TorchrlUnbounded)(1))),
    "set_truncated without a truncated key": (lambda lib: (
        LimitsEnv([3, 3, 3]) if lib is rl_envs else _torchrl_counting_env([3, 3, 3])).rollout(
        2, set_truncated=True)),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_error_types_match_torchrl(case):
    make = ERROR_CASES[case]
    try:
        make(trl_envs)
    except Exception as error:  # torchrl's exception type is what we read here
        theirs = type(error)
    else:
        pytest.fail(f"torchrl raised nothing for {case!r}")
    with pytest.raises(theirs):
        make(rl_envs)


# ---- spec_locked ------------------------------------------------------------------------

def test_specs_are_locked_after_init_as_in_torchrl():
    ours, theirs = GymEnv("Pendulum-v1"), trl_envs.GymEnv("Pendulum-v1")
    assert ours.full_observation_spec.is_locked and theirs.full_observation_spec.is_locked
    with pytest.raises(InvalidValueError, match="Composite: cannot set 'extra' of a locked"):
        ours.observation_spec["extra"] = Unbounded(1)
    # Setting a spec anew is allowed, and the new spec is locked too.
    ours.observation_spec = Composite(observation=Unbounded(3))
    theirs.observation_spec = TorchrlComposite(observation=TorchrlUnbounded(3))
    assert ours.observation_spec.is_locked and theirs.observation_spec.is_locked


def test_spec_locked_false_leaves_specs_open():
    class Open(CountingEnv):
        def __init__(self):
            EnvBase.__init__(self, batch_size=(3,), spec_locked=False)
            self.observation_spec = Composite(observation=Unbounded((3, 1)), shape=(3,))

    env = Open()
    env.observation_spec["extra"] = Unbounded((3, 2))
    assert not env.full_observation_spec.is_locked and "extra" in env.observation_spec.keys()


def test_transformed_env_relocks_after_append_transform():
    env = TransformedEnv(GymEnv("Pendulum-v1"), InitTracker())
    env.append_transform(TensorDictPrimer(hidden=Unbounded(2)))
    assert env.full_observation_spec.is_locked and "hidden" in env.observation_spec.keys()


def test_book_shows_the_keys_module_verbatim():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cells = json.loads((root / "book/01_specs_envs.ipynb").read_text())["cells"]
    shown = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"
             and "".join(c["source"]).startswith("# file: rlmods/_keys.py")]
    assert len(shown) == 1
    body = shown[0].split("\n", 2)[2]
    assert body.strip() == (root / "rlmods/_keys.py").read_text().strip()


def test_rollout_without_reset_resets_done_entries_like_torchrl():
    limits = [2, 4, 3]
    ours, theirs = LimitsEnv(limits), _torchrl_counting_env(limits)
    start = TensorDict({"observation": torch.tensor([[1.0], [2.0], [3.0]]),
                        "done": torch.tensor([[False], [True], [False]]),
                        "terminated": torch.tensor([[False], [True], [False]])}, [3])
    actions = torch.linspace(-1, 1, 4 * 3).reshape(4, 3, 1)
    ref = theirs.rollout(4, policy=_replay(actions), auto_reset=False, tensordict=start.clone(),
                         break_when_any_done=False)
    mine = ours.rollout(4, policy=_replay(actions), auto_reset=False, tensordict=start.clone(),
                        break_when_any_done=False)
    assert mine["observation"][1, 0].item() == 0.0  # entry 1 was done: it starts afresh
    for key in ref.keys(True, True):
        torch.testing.assert_close(mine[key], ref[key], msg=str(key))


def test_maybe_reset_leaves_running_entries_and_the_input_alone():
    env = LimitsEnv([2, 4, 3])
    root = env.reset()
    root["observation"] = torch.tensor([[1.0], [2.0], [3.0]])
    root["done"] = torch.tensor([[False], [True], [False]])
    out = env.maybe_reset(root)
    assert out["observation"].squeeze(-1).tolist() == [1.0, 0.0, 3.0]
    assert "_reset" not in root.keys() and "_reset" not in out.keys()


def test_set_truncated_matches_torchrl():
    ours, theirs = GymEnv("Pendulum-v1"), trl_envs.GymEnv("Pendulum-v1")
    ours.set_seed(0), theirs.set_seed(0)
    actions = torch.zeros(5, 1)
    ref = theirs.rollout(5, policy=_replay(actions), set_truncated=True)
    mine = ours.rollout(5, policy=_replay(actions), set_truncated=True)
    for key in ("truncated", "done", "terminated"):
        torch.testing.assert_close(mine["next", key], ref["next", key], msg=key)


# ---- Transform's _apply_transform protocol ------------------------------------------------

def _scale_transform(lib):
    class Scale(lib.Transform):
        def _apply_transform(self, value):
            return value * 10

    return Scale(in_keys=["observation"], out_keys=["observation"])


def test_apply_transform_matches_torchrl():
    ours = TransformedEnv(GymEnv("Pendulum-v1"), _scale_transform(rl_envs))
    theirs = trl_envs.TransformedEnv(trl_envs.GymEnv("Pendulum-v1"), _scale_transform(trl_envs))
    ours.set_seed(0), theirs.set_seed(0)
    actions = torch.linspace(-2, 2, 5).reshape(5, 1)
    ref = theirs.rollout(5, policy=_replay(actions))
    mine = ours.rollout(5, policy=_replay(actions))
    assert set(mine.keys(True, True)) == set(ref.keys(True, True))
    for key in ref.keys(True, True):
        torch.testing.assert_close(mine[key], ref[key], msg=str(key))
    assert mine["next", "observation"].abs().max() > 2  # scaled: cos, sin are within [-1, 1]


def test_transform_forward_and_compose_forward_apply_the_transform():
    td = TensorDict(observation=torch.ones(3))
    assert _scale_transform(rl_envs)(td.clone())["observation"].tolist() == [10.0] * 3
    both = rl_envs.Compose(_scale_transform(rl_envs), _scale_transform(rl_envs))
    assert both(td.clone())["observation"].tolist() == [100.0] * 3


def test_transform_needs_one_out_key_per_in_key_and_apply_transform():
    with pytest.raises(ValueError, match=r"Transform: out_keys must hold one key per in_key, "
                                         r"got in_keys=\['a'\] and out_keys=\[\]"):
        rl_envs.Transform(in_keys=["a"])
    with pytest.raises(NotImplementedError, match=r"Transform must implement _apply_transform"):
        rl_envs.Transform(["a"], ["b"])(TensorDict(a=torch.ones(1)))
    with pytest.raises(KeyError, match=r"Transform: expected key 'a' in the input tensordict"):
        rl_envs.Transform(["a"], ["b"])(TensorDict(b=torch.ones(1)))


# ---- step_mdp, as torchrl's ---------------------------------------------------------------

def _nested_transition():
    return TensorDict({
        "observation": torch.zeros(2, 3), "action": torch.ones(2, 1), "hidden": torch.ones(2, 4),
        "agents": {"action": torch.ones(2, 1), "state": torch.zeros(2, 2)},
        "done": torch.zeros(2, 1, dtype=torch.bool),
        "next": {"observation": torch.ones(2, 3), "reward": torch.ones(2, 1),
                 "done": torch.ones(2, 1, dtype=torch.bool),
                 "agents": {"reward": torch.ones(2, 1), "state": torch.ones(2, 2)}},
    }, [2])


@pytest.mark.parametrize("kwargs", [
    {}, {"keep_other": False}, {"exclude_reward": False}, {"exclude_done": True},
    {"exclude_action": False}, {"keep_other": False, "exclude_action": False},
    {"action_keys": [("agents", "action")], "reward_keys": [("agents", "reward")]},
    {"reward_keys": ["reward", ("agents", "reward")], "exclude_done": True, "done_keys": "done"},
    {"action_keys": "action", "exclude_action": True, "keep_other": True},
])
def test_step_mdp_matches_torchrl(kwargs):
    from torchrl.envs.utils import step_mdp as trl_step_mdp

    ref, mine = trl_step_mdp(_nested_transition(), **kwargs), step_mdp(_nested_transition(), **kwargs)
    assert sorted(map(str, mine.keys(True, True))) == sorted(map(str, ref.keys(True, True)))
    for key in ref.keys(True, True):
        torch.testing.assert_close(mine[key], ref[key], msg=str(key))


def test_step_mdp_writes_into_next_tensordict():
    target = TensorDict({}, [2])
    out = step_mdp(_nested_transition(), next_tensordict=target)
    assert out is target and target["observation"].eq(1).all()


# ---- rollout(actions=..., storing_device=...), set_state ---------------------------------

@pytest.mark.parametrize("name", ["Pendulum-v1", "CartPole-v1"])
def test_rollout_with_actions_matches_torchrl(name):
    ours, theirs = GymEnv(name), trl_envs.GymEnv(name)
    ours.set_seed(1), theirs.set_seed(1)
    actions = list(ours.full_action_spec["action"].rand((6,)).unbind(0))
    ref = theirs.rollout(50, actions=actions, break_when_any_done=False)
    mine = ours.rollout(50, actions=actions, break_when_any_done=False)
    assert mine.batch_size == ref.batch_size == (6,)  # a sized iterable caps max_steps
    for key in ref.keys(True, True):
        torch.testing.assert_close(mine[key], ref[key], msg=str(key))


def test_rollout_storing_device():
    rollout = CountingEnv().rollout(3, storing_device="cpu")
    assert rollout.device == torch.device("cpu")


def test_set_state_is_refused():
    with pytest.raises(InvalidValueError, match="GymEnv.reset: set_state=True .* not supported"):
        GymEnv("Pendulum-v1").rollout(3, set_state=True)
    assert GymEnv("Pendulum-v1").rollout(2, set_state=False).batch_size == (2,)


def test_gym_env_takes_envbase_flags_like_torchrl():
    ours = GymEnv("Pendulum-v1", spec_locked=False, allow_done_after_reset=True)
    theirs = trl_envs.GymEnv("Pendulum-v1", spec_locked=False, allow_done_after_reset=True)
    assert not ours.full_observation_spec.is_locked and not theirs.is_spec_locked
    assert ours.allow_done_after_reset
    with pytest.raises(InvalidValueError, match="GymEnv: auto_reset=True"):
        GymEnv("Pendulum-v1", auto_reset=True)


# ---- the rollout hot path: step_mdp's flat copy, the cached leaves of locked specs -----------

def _transition(batch=(2,)):
    return TensorDict({"observation": torch.randn(*batch, 3), "action": torch.randn(*batch, 1),
                       "hidden": torch.randn(*batch, 4), "agent": {"memory": torch.zeros(*batch, 2)},
                       "next": {"observation": torch.randn(*batch, 3),
                                "reward": torch.randn(*batch, 1),
                                "done": torch.zeros(*batch, 1, dtype=torch.bool),
                                "agent": {"state": torch.ones(*batch, 2)}}}, batch_size=batch)


@pytest.mark.parametrize("kwargs", [{}, {"exclude_done": True}, {"exclude_reward": False},
                                    {"exclude_action": False}, {"keep_other": False}])
def test_step_mdp_flat_copy_equals_the_general_copy(kwargs):
    from tensordict import LazyStackedTensorDict
    td = _transition()
    lazy = LazyStackedTensorDict.lazy_stack([td[0], td[1]])  # not a TensorDict: general path
    fast, general = step_mdp(td, **kwargs), step_mdp(lazy, **kwargs).to_tensordict()
    assert set(fast.keys(True, True)) == set(general.keys(True, True))
    assert (fast == general).all()
    if kwargs.get("keep_other", True):
        assert set(fast["agent"].keys()) == {"memory", "state"}  # nested entries merged
        assert fast["agent"] is not td["agent"]  # a new sub-tensordict: the source is not aliased


def test_cached_leaves_follow_a_spec_set_anew_and_an_unlocked_spec():
    env = GymEnv("Pendulum-v1")
    assert env.action_keys == ["action"] and env.action_key == "action"
    env.action_spec = Bounded(-1.0, 1.0, (1,))  # a new spec: read afresh
    assert env.action_spec.high.item() == 1.0 and env.action_keys == ["action"]
    env.full_action_spec = Composite(act=Bounded(-1.0, 1.0, (1,)))
    assert env.action_keys == ["act"]  # not locked yet: never cached
    env.full_action_spec.lock_()
    assert env.action_keys == ["act"] and env._leaves("full_action_spec") is env._leaves(
        "full_action_spec")
    env.action_keys.append("mutated")  # callers get a copy of the cached keys
    assert env.action_keys == ["act"]


def test_partial_reset_of_an_unbatched_env_keeps_scalar_entries():
    # A policy's 0-dim output (a log-prob) carried into reset: the keep-mask must reshape to ().
    env = GymEnv("Pendulum-v1")
    td = env.reset(seed=0)
    td.set("sample_log_prob", torch.tensor(-1.5))
    td.set("_reset", torch.ones(1, dtype=torch.bool))
    out = env.reset(td)
    assert out["sample_log_prob"].shape == () and float(out["sample_log_prob"]) == -1.5


# ---- the rollout's own stack and reset -----------------------------------------------------
def test_rollout_stack_key_by_key_equals_tensordicts_stack():
    env = GymEnv("CartPole-v1")
    env.set_seed(0)
    steps, real = [], rl_envs._stack_alike

    def spy(tensordicts, dim):
        if not steps:  # the outer call gets the steps (the recursion, their "next" entries)
            steps.extend(tensordicts)
        out = real(tensordicts, dim)
        assert out is not None  # the steps are alike: stacked key by key
        return out

    try:
        rl_envs._stack_alike = spy
        ours = env.rollout(40, break_when_any_done=False)
    finally:
        rl_envs._stack_alike = real
    reference = torch.stack(steps, 0)
    assert type(ours) is TensorDict and ours.batch_size == reference.batch_size == (40,)
    assert set(ours.keys(True, True)) == set(reference.keys(True, True))
    assert (ours == reference).all()


def test_stack_alike_leaves_unlike_steps_to_tensordict():
    alike = [TensorDict(a=torch.zeros(2), next=TensorDict(b=torch.ones(1))) for _ in range(3)]
    stacked = rl_envs._stack_alike(alike, 0)
    assert stacked.batch_size == (3,) and stacked["next", "b"].shape == (3, 1)
    shapes = [TensorDict(a=torch.zeros(2)), TensorDict(a=torch.zeros(3))]
    keys = [TensorDict(a=torch.zeros(2)), TensorDict(b=torch.zeros(2))]
    batches = [TensorDict(a=torch.zeros(2, 1), batch_size=[2]), TensorDict(a=torch.zeros(2))]
    for steps in (shapes, keys, batches):
        assert rl_envs._stack_alike(steps, 0) is None


def test_maybe_reset_of_an_ended_unbatched_episode_keeps_the_policys_entries():
    env = GymEnv("CartPole-v1")
    env.set_seed(0)
    root = env.reset()
    root["hidden"] = torch.ones(3)  # a policy's own state, carried as reset carries it
    root["done"] = torch.ones(1, dtype=torch.bool)
    out = env.maybe_reset(root)
    assert out is not root and not out["done"].any() and out["hidden"].tolist() == [1.0] * 3
    assert root["done"].all()  # the input is left alone
