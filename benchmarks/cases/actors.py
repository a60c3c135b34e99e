"""Case 1: a deterministic ``Actor`` over the 17 → 256 → 256 → 6 MLP."""

from __future__ import annotations

import rlmods
from benchmarks.common import mlp, observation, with_compiled
from benchmarks.registry import case, torchrl_or_none


@case("actor", goals={1: {"rlmods/torch": 1.15}, 32: {}, 1024: {"rlmods/torch": 1.05}})
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
    return with_compiled(candidates, ours, td, setting)
