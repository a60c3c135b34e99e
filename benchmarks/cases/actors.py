"""Case 1: a deterministic ``Actor`` over the 17 → 256 → 256 → 6 MLP."""

from __future__ import annotations

import rlmods
from benchmarks.common import mlp, observation, with_compiled, with_cuda_graphs
from benchmarks.registry import case, torchrl_or_none


@case("actor", goals={1: {"rlmods/torch": 1.15, "rlmods cudagraph/torch cudagraph": 1.2},
                     32: {}, 1024: {"rlmods/torch": 1.05}})
def actor(setting):
    """Actor(MLP 17-256-256-6) vs the bare nn.Sequential."""
    net = mlp(device=setting.device)
    obs, td = observation(setting)
    ours = rlmods.Actor(net)
    candidates = {"torch": lambda: net(obs), "rlmods": lambda: ours(td)}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        theirs = torchrl.modules.Actor(net)
        candidates["torchrl"] = lambda: theirs(td)
    candidates = with_cuda_graphs(candidates, ours, net, obs, td, setting)
    return with_compiled(candidates, ours, td, setting)
