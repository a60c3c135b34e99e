"""Environments: the reset/step/rollout contract, errors, and torchrl.envs as the oracle."""

import pytest
import tensordict.nn as tdnn
import torch
import torchrl.envs as trl_envs
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from tensordict.nn.probabilistic import interaction_type

import rlmods
from rlmods import (Bounded, Categorical, Composite, EnvBase, GymEnv, InitTracker, OneHot,
                    TensorDictPrimer, TransformedEnv, Unbounded, step_mdp)


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
