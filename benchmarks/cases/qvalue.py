"""Case 3: Q-value actors (categorical, one-hot), ε-greedy over one, distributional."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import rlmods
from benchmarks.common import ACTIONS, mlp, observation, with_compiled
from benchmarks.registry import case, torchrl_or_none

ATOMS = 51
QVALUE_GOALS = {1: {"rlmods/torch": 1.25, "rlmods/torchrl": 0.3}, 32: {},
                1024: {"rlmods/torch": 1.05}}


def greedy_by_hand(net, obs, one_hot: bool):
    """Action values, the greedy action and its value, in plain torch."""
    values = net(obs)  # (B, n)
    index = values.argmax(-1)
    if one_hot:
        action = F.one_hot(index, values.shape[-1])
        return action, values, (action * values).sum(-1, keepdim=True)
    return index, values, values.gather(-1, index.unsqueeze(-1))


def _qvalue_case(setting, one_hot: bool) -> dict:
    net = mlp(activation=nn.ReLU, device=setting.device)
    obs, td = observation(setting)
    spec = rlmods.OneHot(ACTIONS) if one_hot else rlmods.Categorical(ACTIONS)
    ours = rlmods.QValueActor(net, spec=spec)
    candidates = {"torch": lambda: greedy_by_hand(net, obs, one_hot), "rlmods": lambda: ours(td)}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        their_spec = (torchrl.data.OneHot if one_hot else torchrl.data.Categorical)(ACTIONS)
        theirs = torchrl.modules.QValueActor(net, spec=their_spec)
        candidates["torchrl"] = lambda: theirs(td)
    return with_compiled(candidates, ours, td, setting)


@case("qvalue_actor_categorical", goals=QVALUE_GOALS)
def qvalue_categorical(setting):
    """QValueActor (Categorical spec) vs net + argmax + gather."""
    return _qvalue_case(setting, one_hot=False)


@case("qvalue_actor_one_hot", goals=QVALUE_GOALS)
def qvalue_one_hot(setting):
    """QValueActor (OneHot spec) vs net + one_hot(argmax) + sum."""
    return _qvalue_case(setting, one_hot=True)


def egreedy_by_hand(net, obs, eps: float):
    """A one-hot greedy action, replaced by a random one with probability eps."""
    greedy = F.one_hot(net(obs).argmax(-1), ACTIONS)
    random_action = F.one_hot(torch.randint(ACTIONS, obs.shape[:-1], device=obs.device), ACTIONS)
    explore = torch.rand(obs.shape[:-1], device=obs.device) < eps
    return torch.where(explore.unsqueeze(-1), random_action, greedy)


@case("egreedy_qvalue_actor", goals={1: {"rlmods/torch": 1.4}, 32: {},
                                     1024: {"rlmods/torch": 1.05}})
def egreedy(setting):
    """EGreedyModule after a one-hot QValueActor vs the same in plain torch."""
    net = mlp(activation=nn.ReLU, device=setting.device)
    obs, td = observation(setting)
    ours = rlmods.SafeSequential(
        rlmods.QValueActor(net, spec=rlmods.OneHot(ACTIONS)),
        rlmods.EGreedyModule(rlmods.OneHot(ACTIONS), 0.1, device=setting.device))
    candidates = {"torch": lambda: egreedy_by_hand(net, obs, 0.1), "rlmods": lambda: ours(td)}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        theirs = torchrl.modules.SafeSequential(
            torchrl.modules.QValueActor(net, spec=torchrl.data.OneHot(ACTIONS)),
            torchrl.modules.EGreedyModule(torchrl.data.OneHot(ACTIONS), 0.1,
                                          device=setting.device))
        candidates["torchrl"] = lambda: theirs(td)
    return with_compiled(candidates, ours, td, setting)


@case("distributional_qvalue_actor", goals={1: {}, 32: {}, 1024: {"rlmods/torch": 1.05}})
def distributional(setting):
    """DistributionalQValueActor (51 atoms) vs log_softmax + expected value + argmax."""
    support = torch.linspace(-10.0, 10.0, ATOMS, device=setting.device)
    net = nn.Sequential(mlp(ATOMS * ACTIONS, nn.ReLU), nn.Unflatten(-1, (ATOMS, ACTIONS)))
    net = net.to(setting.device)
    obs, td = observation(setting)

    def by_hand():
        log_probs = net(obs).log_softmax(-2)  # (B, atoms, n)
        return (log_probs.exp() * support.unsqueeze(-1)).sum(-2).argmax(-1), log_probs

    ours = rlmods.DistributionalQValueActor(net, support=support,
                                            spec=rlmods.Categorical(ACTIONS))
    candidates = {"torch": by_hand, "rlmods": lambda: ours(td)}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        theirs = torchrl.modules.DistributionalQValueActor(
            net, support=support, spec=torchrl.data.Categorical(ACTIONS))
        candidates["torchrl"] = lambda: theirs(td)
    return with_compiled(candidates, ours, td, setting)
