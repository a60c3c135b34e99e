"""Planners: CEM and MPPI against torchrl's on the same model env, done masking, errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch
import torchrl.data
import torchrl.envs
import torchrl.modules
from oracle_helpers import raised
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

import rlmods
from rlmods import Bounded, Composite, EnvBase, InvalidValueError, Unbounded
from rlmods.planners import cem_refit, mask_after_done, mppi_refit


def pendulum_step(obs, action):
    """gymnasium's Pendulum-v1 step on tensors: (*B, 3), (*B, 1) -> next obs, reward."""
    cos, sin, speed = obs.unbind(-1)
    u = action.squeeze(-1).clamp(-2.0, 2.0)
    theta = torch.atan2(sin, cos)
    cost = theta ** 2 + 0.1 * speed ** 2 + 0.001 * u ** 2
    speed = (speed + (15.0 * sin + 3.0 * u) * 0.05).clamp(-8.0, 8.0)
    theta = theta + speed * 0.05
    return torch.stack([theta.cos(), theta.sin(), speed], -1), -cost.unsqueeze(-1)


def line_step(obs, action, limit):
    """A point moved by the action; reward +1 per step, done once |x| >= limit."""
    x = obs + action
    return x, torch.ones_like(x), x.abs() >= limit


class Model(EnvBase):
    """rlmods' model env: the pendulum (or the line with a done), any batch."""
    _batch_locked = False

    def __init__(self, kind="pendulum", action_key="action", limit=2.5):
        super().__init__()
        self.kind, self.key, self.limit = kind, action_key, limit
        size = 3 if kind == "pendulum" else 1
        self.observation_spec = Composite(observation=Unbounded(size))
        self.full_action_spec = Composite({action_key: Bounded(-2.0, 2.0, (1,))})
        self.reward_spec = Unbounded(1)

    def _step(self, td):
        return _step(self, td)


class TorchrlModel(torchrl.envs.EnvBase):
    """The same model as a torchrl env, for the oracle."""

    def __init__(self, kind="pendulum", action_key="action", limit=2.5):
        super().__init__()
        self._batch_locked = False
        self.kind, self.key, self.limit = kind, action_key, limit
        size = 3 if kind == "pendulum" else 1
        self.observation_spec = torchrl.data.Composite(observation=torchrl.data.Unbounded(size))
        self.full_action_spec = torchrl.data.Composite(
            {action_key: torchrl.data.Bounded(-2.0, 2.0, (1,))})
        self.reward_spec = torchrl.data.Unbounded(1)

    def _reset(self, td=None, **kwargs):  # deterministic: the RNG stays in step with rlmods'
        shape = td.batch_size if td is not None else self.batch_size
        size = 3 if self.kind == "pendulum" else 1
        return TensorDict(observation=torch.zeros(*shape, size), batch_size=shape)

    def _step(self, td):
        return _step(self, td)

    def _set_seed(self, seed):
        pass


def _step(env, td):
    if env.kind == "pendulum":
        obs, reward = pendulum_step(td["observation"], td[env.key])
        done = torch.zeros_like(reward, dtype=torch.bool)
    else:
        obs, reward, done = line_step(td["observation"], td[env.key], env.limit)
    return TensorDict(observation=obs, reward=reward, done=done, terminated=done.clone(),
                      batch_size=td.batch_size)


def start(batch=(2,), kind="pendulum"):
    g = torch.Generator().manual_seed(1)
    if kind == "pendulum":
        theta = torch.rand(batch, generator=g) * 6.0 - 3.0
        obs = torch.stack([theta.cos(), theta.sin(), torch.randn(batch, generator=g)], -1)
    else:
        obs = torch.zeros(*batch, 1)
    return TensorDict(observation=obs, batch_size=batch)


def to_go():
    """Advantage = undiscounted reward-to-go (no value net)."""
    return TensorDictModule(lambda r: r.flip(-2).cumsum(-2).flip(-2),
                            in_keys=[("next", "reward")], out_keys=["advantage"])


def plan_both(ours, theirs, td, seed=0):
    torch.manual_seed(seed)
    a = ours(td.clone())
    torch.manual_seed(seed)
    b = theirs(td.clone())
    return a, b


# -- the model env against gymnasium -------------------------------------------------------
def test_pendulum_model_matches_gymnasium_step_for_step():
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(100):
        action = rng.uniform(-2.5, 2.5, size=1).astype(np.float32)  # beyond the bounds too
        mine, reward = pendulum_step(torch.as_tensor(obs), torch.as_tensor(action))
        obs, ref_reward, *_ = env.step(action)
        torch.testing.assert_close(mine, torch.as_tensor(obs), atol=2e-5, rtol=1e-5)
        assert abs(reward.item() - ref_reward) < 1e-4


# -- the planners against torchrl ----------------------------------------------------------
@pytest.mark.parametrize("batch, top_k", [((), 5), ((3,), 5), ((2, 2), 5), ((3,), 2)])
def test_cem_matches_torchrl(batch, top_k):
    args = (6, 3, 40, top_k)  # top_k=2: the fewest elites with a sample std (correction 1)
    ours = rlmods.CEMPlanner(Model(), *args)
    theirs = torchrl.modules.CEMPlanner(TorchrlModel(), *args)
    a, b = plan_both(ours, theirs, start(batch))
    assert a["action"].shape == (*batch, 1)
    torch.testing.assert_close(a["action"], b["action"])


@pytest.mark.filterwarnings("ignore:std... degrees of freedom")  # torchrl: std of one
def test_cem_one_candidate_is_the_projected_sample():
    ours = rlmods.CEMPlanner(Model(), 4, 1, 1, 1)
    theirs = torchrl.modules.CEMPlanner(TorchrlModel(), 4, 1, 1, 1)
    a, b = plan_both(ours, theirs, start((5,)), seed=2)
    torch.manual_seed(2)
    first = torch.randn(5, 1, 4, 1)[:, 0, 0].clamp(-2.0, 2.0)
    torch.testing.assert_close(a["action"], first)
    torch.testing.assert_close(b["action"], first)


def test_cem_statistics_match_torchrl_over_many_states():
    ours = rlmods.CEMPlanner(Model(), 8, 4, 64, 8)
    theirs = torchrl.modules.CEMPlanner(TorchrlModel(), 8, 4, 64, 8)
    a, b = plan_both(ours, theirs, start((256,)), seed=5)
    assert abs(a["action"].mean() - b["action"].mean()) < 1e-5
    assert abs(a["action"].std() - b["action"].std()) < 1e-5


def test_mppi_matches_torchrl_with_torchrl_advantage_estimator():
    from torchrl.objectives.value import TDLambdaEstimator

    value = TensorDictModule(torch.nn.Linear(3, 1), in_keys=["observation"],
                             out_keys=["state_value"])
    advantage = TDLambdaEstimator(gamma=0.9, lmbda=0.8, value_network=value)
    args = (advantage, 0.1, 6, 3, 40, 5)
    ours = rlmods.MPPIPlanner(Model(), *args)
    theirs = torchrl.modules.MPPIPlanner(TorchrlModel(), *args)
    a, b = plan_both(ours, theirs, start((4,)))
    torch.testing.assert_close(a["action"], b["action"])


@pytest.mark.parametrize("batch", [(), (3,)])
def test_mppi_matches_torchrl_with_reward_to_go(batch):
    args = (to_go(), 0.05, 5, 3, 30, 6)
    ours = rlmods.MPPIPlanner(Model(), *args)
    theirs = torchrl.modules.MPPIPlanner(TorchrlModel(), *args)
    a, b = plan_both(ours, theirs, start(batch))
    torch.testing.assert_close(a["action"], b["action"])


def test_mppi_large_advantages_stay_finite_better_than_torchrl():
    # Pendulum returns over 20 steps are in the hundreds: exp(-300) underflows to 0.
    ours = rlmods.MPPIPlanner(Model(), to_go(), 1.0, 20, 2, 30, 5)
    out = ours(start((4,)))
    assert torch.isfinite(out["action"]).all()


@pytest.mark.torchrl_bug
def test_torchrl_mppi_underflows_to_nan_on_large_advantages():
    theirs = torchrl.modules.MPPIPlanner(TorchrlModel(), to_go(), 1.0, 20, 2, 30, 5)
    torch.manual_seed(0)
    assert torch.isnan(theirs(start((4,)))["action"]).all()


def test_mppi_refit_is_torchrl_exponential_average():
    g = torch.Generator().manual_seed(0)
    actions, adv = torch.randn(3, 10, 4, 2, generator=g), torch.randn(3, 10, generator=g)
    mean, std = mppi_refit(actions, adv, 4, torch.tensor(2.0))
    vals, idx = adv.topk(4, -1)
    w = (2.0 * vals).exp()[..., None, None]
    best = actions.gather(1, idx[..., None, None].expand(3, 4, 4, 2))
    ref = (w * best).sum(1, keepdim=True) / w.sum(1, keepdim=True)
    torch.testing.assert_close(mean, ref)
    torch.testing.assert_close(std, ((w * (best - ref) ** 2).sum(1, True) / w.sum(1, True)).sqrt())


def test_cem_refit_single_elite_better_than_torchrl():
    ours = rlmods.CEMPlanner(Model(), 4, 3, 1, 1)
    assert torch.isfinite(ours(start((3,)))["action"]).all()


@pytest.mark.torchrl_bug
def test_torchrl_cem_single_elite_is_nan():
    theirs = torchrl.modules.CEMPlanner(TorchrlModel(), 4, 3, 1, 1)
    with pytest.warns(UserWarning, match="degrees of freedom"):
        assert torch.isnan(theirs(start((3,)))["action"]).all()


def test_cem_refit_elites():
    actions = torch.arange(5.0).view(5, 1, 1)
    mean, std = cem_refit(actions, torch.tensor([0.0, 1.0, 4.0, 3.0, 2.0]), top_k=3)
    assert mean.item() == 3.0 and abs(std.item() - 1.0) < 1e-6


# -- done, bounds, keys, batching ----------------------------------------------------------
def test_mask_after_done_keeps_the_done_step():
    reward = torch.arange(1.0, 6.0).view(1, 5, 1)
    done = torch.tensor([False, False, True, False, True]).view(1, 5, 1)
    assert mask_after_done(reward, done).flatten().tolist() == [1.0, 2.0, 3.0, 0.0, 0.0]


def test_no_reward_after_done_matches_torchrl():
    # Reward +1 per step until |x| >= 2.5: a plan that ends the episode early scores less,
    # so the planner must slow down; without the mask every plan would score the horizon.
    ours = rlmods.CEMPlanner(Model("line"), 5, 4, 64, 8)
    theirs = torchrl.modules.CEMPlanner(TorchrlModel("line"), 5, 4, 64, 8)
    a, b = plan_both(ours, theirs, start((3,), "line"))
    torch.testing.assert_close(a["action"], b["action"])


def test_rollout_rewards_stop_at_done():
    planner = rlmods.CEMPlanner(Model("line"), 4, 1, 2, 1)
    actions = torch.tensor([[2.0, 2.0, 2.0, 2.0], [0.1, 0.1, 0.1, 0.1]]).view(2, 4, 1)
    rollout = planner.imagine(start((), "line"), actions)
    assert rollout.batch_size == (2, 4)
    reward = mask_after_done(rollout["next", "reward"], rollout["next", "done"])
    assert reward.sum((-2, -1)).tolist() == [2.0, 4.0]


def test_actions_respect_the_spec_bounds():
    env = Model()
    seen = []
    step = env._step
    env._step = lambda td: (seen.append(td["action"].clone()), step(td))[1]
    planner = rlmods.CEMPlanner(env, 3, 2, 200, 10)
    with torch.no_grad():
        out = planner(start((2,)))
    candidates = torch.stack(seen)
    assert candidates.abs().max() == 2.0  # N(0, 1) * 200 * 3 draws: some are clamped
    assert out["action"].abs().max() <= 2.0


def test_one_batched_step_per_time_step_no_loop_over_candidates():
    env = Model()
    calls = []
    step = env._step
    env._step = lambda td: (calls.append(td.batch_size), step(td))[1]
    rlmods.CEMPlanner(env, 5, 3, 500, 10)(start((4,)))
    assert len(calls) == 5 * 3 and set(calls) == {torch.Size([4, 500])}


def test_writes_action_key_and_steps_the_env_action_key():
    ours = rlmods.CEMPlanner(Model(action_key="torque"), 4, 2, 20, 4, action_key="plan")
    out = ours(start((2,)))
    assert "plan" in out.keys() and "torque" not in out.keys() and out["plan"].shape == (2, 1)
    mppi = rlmods.MPPIPlanner(Model(action_key="torque"), to_go(), 1.0, 4, 2, 20, 4,
                              action_key="plan")
    assert mppi.out_keys == ["plan"] and mppi(start((2,)))["plan"].shape == (2, 1)


def test_spec_is_the_env_action_spec_under_the_action_key_better_than_torchrl():
    env = Model()
    planner = rlmods.CEMPlanner(env, 4, 2, 20, 4)
    assert planner.spec["action"] == env.action_spec
    # torchrl's planner declares no spec for its action (a policy wrapper cannot read one)
    assert torchrl.modules.CEMPlanner(TorchrlModel(), 4, 2, 20, 4).spec["action"] is None


@pytest.mark.torchrl_bug
def test_torchrl_fails_on_an_env_action_key_other_than_action():
    # env.action_spec is then the Composite, whose project fails; its rollout would write
    # candidates to "action" anyway.
    theirs = torchrl.modules.CEMPlanner(TorchrlModel(action_key="torque"), 4, 2, 20, 4)
    error = raised(lambda: theirs(start((2,))))
    assert isinstance(error, AttributeError) and "has no attribute 'get'" in str(error)


def test_call_forms_agree():
    planner = rlmods.CEMPlanner(Model(), 4, 2, 20, 4)
    td = start((2,))
    torch.manual_seed(0)
    a = planner(td.clone())["action"]
    torch.manual_seed(0)
    out = planner(td.clone(), tensordict_out=TensorDict(batch_size=[2]))
    assert list(out.keys()) == ["action"]
    torch.testing.assert_close(out["action"], a)


def test_planner_in_keys_and_multistep_wrapper_replans():
    planner = rlmods.CEMPlanner(Model(), 6, 2, 20, 4)
    assert planner.in_keys == ["observation"] and planner.out_keys == ["action"]
    assert planner.optimize(start((3,))).shape == (3, 6, 1)


def test_batch_unlocked_env_steps_any_leading_dims():
    env = Model()
    td = start((4, 5)).set("action", torch.zeros(4, 5, 1))
    assert env.step(td)["next", "observation"].shape == (4, 5, 3)
    with pytest.raises(ValueError, match=r"'action' must have a shape ending in \(1,\)"):
        env.step(start((4,)).set("action", torch.zeros(4, 2)))


# -- errors --------------------------------------------------------------------------------
class Locked(EnvBase):
    def __init__(self):
        super().__init__(batch_size=(4,))
        self.observation_spec = Composite(observation=Unbounded((4, 3)), shape=(4,))
        self.action_spec = Bounded(-2.0, 2.0, (4, 1))
        self.reward_spec = Unbounded((4, 1))


class TorchrlLocked(torchrl.envs.EnvBase):
    def __init__(self):
        super().__init__(batch_size=(4,))
        self.observation_spec = torchrl.data.Composite(
            observation=torchrl.data.Unbounded((4, 3)), shape=(4,))
        self.action_spec = torchrl.data.Bounded(-2.0, 2.0, (4, 1))
        self.reward_spec = torchrl.data.Unbounded((4, 1))

    _reset = _step = _set_seed = None


def test_batch_locked_env_cannot_hold_the_candidates():
    with pytest.raises(InvalidValueError, match=r"CEMPlanner: env must step any batch size "
                       r"\(batch_locked=False\).*a batch-locked Locked with batch_size \(4,\)"):
        rlmods.CEMPlanner(Locked(), 5, 2, 10, 2)
    theirs = raised(lambda: torchrl.modules.CEMPlanner(TorchrlLocked(), 5, 2, 10, 2))
    assert isinstance(raised(lambda: rlmods.CEMPlanner(Locked(), 5, 2, 10, 2)), type(theirs))


@pytest.mark.parametrize("name, args", [("planning_horizon", (0, 2, 10, 2)),
                                        ("optim_steps", (5, 0, 10, 2)),
                                        ("num_candidates", (5, 2, 0, 2)),
                                        ("top_k", (5, 2, 10, 0)),
                                        ("planning_horizon", (2.5, 2, 10, 2))])
def test_counts_must_be_positive_ints(name, args):
    with pytest.raises(InvalidValueError, match=f"CEMPlanner: {name} must be an int >= 1"):
        rlmods.CEMPlanner(Model(), *args)
    with pytest.raises(InvalidValueError, match=f"MPPIPlanner: {name} must be an int >= 1"):
        rlmods.MPPIPlanner(Model(), to_go(), 1.0, *args)


def test_top_k_above_candidates_is_an_error_like_torchrl():
    with pytest.raises(InvalidValueError, match="top_k must be <= num_candidates=5.*got top_k=6"):
        rlmods.CEMPlanner(Model(), 5, 2, 5, 6)
    theirs = torchrl.modules.CEMPlanner(TorchrlModel(), 5, 2, 5, 6)
    assert isinstance(raised(lambda: theirs(start())), RuntimeError)


def test_env_without_the_reward_key():
    with pytest.raises(KeyError, match=r"CEMPlanner: reward_key must be one of the env's "
                       r"rewards \[\('next', 'reward'\)\], got \('next', 'cost'\)"):
        rlmods.CEMPlanner(Model(), 5, 2, 10, 2, reward_key=("next", "cost"))
    with pytest.raises(KeyError, match=r"MPPIPlanner: reward_key must be one of"):
        rlmods.MPPIPlanner(Model(), to_go(), 1.0, 5, 2, 10, 2, reward_key=("next", "cost"))


def test_missing_observation_is_a_key_error():
    with pytest.raises(KeyError, match="CEMPlanner: expected key .+observation"):
        rlmods.CEMPlanner(Model(), 5, 2, 10, 2)(TensorDict(obs=torch.zeros(2, 3), batch_size=[2]))


def test_forward_keyword_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"CEMPlanner: forward takes no keyword arguments.*"
                                         r"\['params'\]"):
        rlmods.CEMPlanner(Model(), 5, 2, 10, 2)(start(), params=None)


def test_advantage_module_must_write_advantage():
    silent = TensorDictModule(lambda r: r, in_keys=[("next", "reward")], out_keys=["gain"])
    with pytest.raises(KeyError, match="MPPIPlanner: expected key .+advantage"):
        rlmods.MPPIPlanner(Model(), silent, 1.0, 5, 2, 10, 2)(start())
    wrong = TensorDictModule(lambda r: r[..., 0], in_keys=[("next", "reward")],
                             out_keys=["advantage"])
    with pytest.raises(ValueError, match=r"'advantage' must have shape \(2, 10, 5, 1\)"):
        rlmods.MPPIPlanner(Model(), wrong, 1.0, 5, 2, 10, 2)(start())


def test_temperature_is_a_buffer_as_in_torchrl():
    ours = rlmods.MPPIPlanner(Model(), to_go(), 0.5, 5, 2, 10, 2)
    theirs = torchrl.modules.MPPIPlanner(TorchrlModel(), to_go(), 0.5, 5, 2, 10, 2)
    assert dict(ours.named_buffers()).keys() == dict(theirs.named_buffers()).keys()
    ours.load_state_dict(theirs.state_dict())


def test_a_truncated_candidate_stops_counting_rewards_too():
    """``done``, not ``terminated``, ends a candidate: a truncation stops its rewards as well."""

    class Truncating(Model):  # the line, whose end is done but never terminated
        def _step(self, td):
            out = _step(self, td)
            out["terminated"] = torch.zeros_like(out["done"])
            return out

    seen = []  # the rewards MPPI's advantage module reads: zero after each candidate's end
    record = TensorDictModule(lambda r: seen.append(r) or r.flip(-2).cumsum(-2).flip(-2),
                              in_keys=[("next", "reward")], out_keys=["advantage"])
    torch.manual_seed(0)
    rlmods.MPPIPlanner(Truncating("line"), record, 1.0, 4, 1, 64, 4)(start((), "line"))
    rewards = seen[0][..., 0]  # (candidates, horizon): 1 while running, 0 once truncated
    assert (rewards[:, 1:] <= rewards[:, :-1]).all()
    assert (rewards == 0).any() and (rewards.sum(-1) >= 1).all()
