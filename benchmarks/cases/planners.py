"""Case 6: one planning call of ``CEMPlanner`` / ``MPPIPlanner`` in a pendulum model env.

The model env is the planners chapter's: gymnasium's Pendulum-v1 physics in torch, stepping
any batch. The "batch" of this case is the number of candidates (horizon 15, 3 rounds,
top_k 10, one start state, as in the chapter's timing).
"""

from __future__ import annotations

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModule

import rlmods
from benchmarks.registry import case, torchrl_or_none

HORIZON, ROUNDS, TOP_K, TEMPERATURE = 15, 3, 10, 0.1
PLANNER_GOALS = {n: {"rlmods/torch": 1.25, "rlmods/torchrl": 0.3} for n in (10, 100, 1000)}


def pendulum_step(obs: torch.Tensor, action: torch.Tensor):
    """Pendulum-v1's step: observation (*B, 3), torque (*B, 1) -> next observation, reward."""
    cos, sin, speed = obs.unbind(-1)
    u = action.squeeze(-1).clamp(-2.0, 2.0)
    theta = torch.atan2(sin, cos)  # in [-pi, pi]: the wrapped angle of the cost
    cost = theta**2 + 0.1 * speed**2 + 0.001 * u**2
    speed = (speed + (15.0 * sin + 3.0 * u) * 0.05).clamp(-8.0, 8.0)
    theta = theta + speed * 0.05
    return torch.stack([theta.cos(), theta.sin(), speed], -1), -cost.unsqueeze(-1)


class PendulumModel(rlmods.EnvBase):
    """Pendulum-v1's physics as a batch-unlocked rlmods env (the planners chapter's)."""

    _batch_locked = False

    def __init__(self):
        super().__init__()
        self.observation_spec = rlmods.Composite(observation=rlmods.Unbounded(3))
        self.action_spec = rlmods.Bounded(-2.0, 2.0, (1,))
        self.reward_spec = rlmods.Unbounded(1)

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        obs, reward = pendulum_step(tensordict.get("observation"), tensordict.get("action"))
        done = torch.zeros_like(reward, dtype=torch.bool)  # the pendulum never terminates
        return TensorDict(observation=obs, reward=reward, done=done,
                          batch_size=tensordict.batch_size)


def torchrl_pendulum_model(torchrl):
    """The same model as a torchrl env (its planners need one)."""

    class TorchrlPendulumModel(torchrl.envs.EnvBase):
        def __init__(self):
            super().__init__()
            self._batch_locked = False
            self.observation_spec = torchrl.data.Composite(observation=torchrl.data.Unbounded(3))
            self.action_spec = torchrl.data.Bounded(-2.0, 2.0, (1,))
            self.reward_spec = torchrl.data.Unbounded(1)

        def _step(self, td):
            obs, reward = pendulum_step(td["observation"], td["action"])
            done = torch.zeros_like(reward, dtype=torch.bool)
            return TensorDict(observation=obs, reward=reward, done=done,
                              batch_size=td.batch_size)

        def _reset(self, td=None, **kwargs):
            return TensorDict(observation=torch.zeros(3))

        def _set_seed(self, seed):
            pass

    return TorchrlPendulumModel()


def reward_to_go() -> TensorDictModule:
    """MPPI's advantage: the reward still to come along the time dim."""
    return TensorDictModule(lambda r: r.flip(-2).cumsum(-2).flip(-2),
                            in_keys=[("next", "reward")], out_keys=["advantage"])


def _by_hand(obs, candidates: int, refit):
    """The floor: CEM / MPPI in plain torch with the pendulum step inlined.

    ``obs`` ``(3,)``; the same draws as the planners (one ``randn`` of ``(N, H, 1)`` per
    round), the rewards summed over the horizon (the pendulum never terminates).
    """
    mean, std = torch.zeros(1, HORIZON, 1), torch.ones(1, HORIZON, 1)
    for _ in range(ROUNDS):
        actions = (mean + std * torch.randn(candidates, HORIZON, 1)).clamp(-2.0, 2.0)
        x, rewards = obs.expand(candidates, 3), []
        for t in range(HORIZON):
            x, reward = pendulum_step(x, actions[:, t])
            rewards.append(reward)
        mean, std = refit(actions, torch.stack(rewards, 1))  # rewards (N, H, 1)
    return mean[0, 0].clamp(-2.0, 2.0)


def cem_by_hand(obs, candidates: int):
    def refit(actions, rewards):
        elites = actions[rewards.sum((1, 2)).topk(TOP_K).indices]  # (k, H, 1)
        return elites.mean(0, keepdim=True), elites.std(0, keepdim=True)

    return _by_hand(obs, candidates, refit)


def mppi_by_hand(obs, candidates: int):
    def refit(actions, rewards):
        best, index = rewards.sum((1, 2)).topk(TOP_K)  # the first step's reward to go
        weights = torch.softmax(TEMPERATURE * best, 0).view(-1, 1, 1)
        elites = actions[index]
        mean = (weights * elites).sum(0, keepdim=True)
        return mean, (weights * (elites - mean).pow(2)).sum(0, keepdim=True).sqrt()

    return _by_hand(obs, candidates, refit)


def _planner_case(setting, kind: str) -> dict:
    candidates = setting.batch
    start = TensorDict(observation=torch.tensor([-1.0, 0.0, 0.0]))  # hanging, at rest
    sizes = (HORIZON, ROUNDS, candidates, TOP_K)
    mppi = (reward_to_go(), TEMPERATURE) if kind == "MPPI" else ()
    ours = getattr(rlmods, f"{kind}Planner")(PendulumModel(), *mppi, *sizes)
    by_hand = cem_by_hand if kind == "CEM" else mppi_by_hand
    obs = start["observation"]
    out = {"torch": lambda: by_hand(obs, candidates), "rlmods": lambda: ours(start.copy())}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        theirs = getattr(torchrl.modules, f"{kind}Planner")(torchrl_pendulum_model(torchrl),
                                                            *mppi, *sizes)
        out["torchrl"] = lambda: theirs(start.copy())
    return out


@case("cem_planner", batches=(10, 100, 1000), goals=PLANNER_GOALS)
def cem(setting):
    """CEMPlanner, one call (horizon 15, 3 rounds, top 10; batch = candidates) vs CEM by hand."""
    return _planner_case(setting, "CEM")


@case("mppi_planner", batches=(10, 100, 1000), goals=PLANNER_GOALS)
def mppi(setting):
    """MPPIPlanner, one call (as cem_planner, temperature 0.1) vs MPPI by hand."""
    return _planner_case(setting, "MPPI")
