"""Case 7: ``env.rollout`` against a bare gymnasium loop, in steps per second."""

from __future__ import annotations

import torch
from torch import nn

import rlmods
from benchmarks.registry import case, torchrl_or_none

STEPS, QUICK_STEPS = 1000, 20
ROLLOUT_GOALS = {1: {"rlmods/torch": 2.0}}


def _steps(setting) -> int:
    return QUICK_STEPS if setting.quick else STEPS


def _cartpole_net(device) -> nn.Module:
    generator = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return net.to(device)


@case("rollout_cartpole_qvalue", batches=(1,), goals=ROLLOUT_GOALS, steps=_steps)
def cartpole(setting):
    """CartPole-v1 rollout with a QValueActor policy vs gymnasium + the same net by hand."""
    import gymnasium as gym

    steps, net = _steps(setting), _cartpole_net(setting.device)
    raw = gym.make("CartPole-v1")

    def gym_loop():
        observation, _ = raw.reset(seed=0)
        for _ in range(steps):
            action = net(torch.as_tensor(observation, device=setting.device)).argmax(-1)
            observation, _, terminated, truncated, _ = raw.step(int(action))
            if terminated or truncated:
                observation, _ = raw.reset()

    env = rlmods.GymEnv("CartPole-v1")
    env.set_seed(0)
    policy = rlmods.QValueActor(net, spec=env.action_spec)
    candidates = {"torch": gym_loop,
                  "rlmods": lambda: env.rollout(steps, policy, break_when_any_done=False)}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        their_env = torchrl.envs.GymEnv("CartPole-v1")
        their_env.set_seed(0)
        theirs = torchrl.modules.QValueActor(net, spec=their_env.action_spec)
        candidates["torchrl"] = lambda: their_env.rollout(steps, theirs,
                                                          break_when_any_done=False)
    return candidates


@case("rollout_pendulum_random", batches=(1,), goals=ROLLOUT_GOALS, steps=_steps)
def pendulum(setting):
    """Pendulum-v1 rollout with random actions (no policy) vs gymnasium's own loop."""
    import gymnasium as gym

    steps = _steps(setting)
    raw = gym.make("Pendulum-v1")
    raw.action_space.seed(0)

    def gym_loop():
        raw.reset(seed=0)
        for _ in range(steps):
            _, _, terminated, truncated, _ = raw.step(raw.action_space.sample())
            if terminated or truncated:
                raw.reset()

    env = rlmods.GymEnv("Pendulum-v1")
    env.set_seed(0)
    candidates = {"torch": gym_loop,
                  "rlmods": lambda: env.rollout(steps, break_when_any_done=False)}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        their_env = torchrl.envs.GymEnv("Pendulum-v1")
        their_env.set_seed(0)
        candidates["torchrl"] = lambda: their_env.rollout(steps, break_when_any_done=False)
    return candidates
