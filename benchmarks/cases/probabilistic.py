"""Case 2: ``ProbabilisticActor`` with ``TanhNormal``, sample + log_prob."""

from __future__ import annotations

import torch
from tensordict.nn import InteractionType, NormalParamExtractor, TensorDictModule
from torch import nn

import rlmods
from benchmarks.common import ACTIONS, mlp, observation, with_compiled
from benchmarks.registry import case, torchrl_or_none

SCALE_BIAS = 0.5413  # NormalParamExtractor's softplus bias: softplus(x + b) = 1 at x = 0
LOG_SQRT_2PI, LOG_2 = 0.9189385332046727, 0.6931471805599453


def tanh_normal_by_hand(net, obs):
    """Parameters, a reparametrised tanh-normal draw and its log-probability, in plain torch."""
    loc, raw_scale = net(obs).chunk(2, -1)
    scale = nn.functional.softplus(raw_scale + SCALE_BIAS) + 1e-4
    x = loc + scale * torch.randn_like(loc)
    log_prob = (-((x - loc) / scale) ** 2 / 2 - scale.log() - LOG_SQRT_2PI
                - 2 * (LOG_2 - x - nn.functional.softplus(-2 * x))).sum(-1)
    return torch.tanh(x), log_prob


@case("probabilistic_actor_tanh_normal",
      goals={1: {"rlmods/torch": 1.3, "rlmods/torchrl": 0.25}, 32: {},
             1024: {"rlmods/torch": 1.05}})
def probabilistic_actor(setting):
    """ProbabilisticActor(TanhNormal) sample + log_prob vs a hand-written tanh-normal."""
    net = mlp(2 * ACTIONS, device=setting.device)
    obs, td = observation(setting)
    params = TensorDictModule(nn.Sequential(net, NormalParamExtractor()), in_keys=["observation"],
                              out_keys=["loc", "scale"])
    kwargs = dict(in_keys=["loc", "scale"], return_log_prob=True,
                  default_interaction_type=InteractionType.RANDOM,
                  distribution_kwargs={"low": -1.0, "high": 1.0})
    ours = rlmods.ProbabilisticActor(params, distribution_class=rlmods.TanhNormal, **kwargs)
    candidates = {"torch": lambda: tanh_normal_by_hand(net, obs), "rlmods": lambda: ours(td)}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        theirs = torchrl.modules.ProbabilisticActor(
            params, distribution_class=torchrl.modules.TanhNormal, **kwargs)
        candidates["torchrl"] = lambda: theirs(td)
    return with_compiled(candidates, ours, td, setting)
