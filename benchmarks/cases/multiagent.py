"""Case 5: ``MultiAgentMLP`` with 4, 16 and 64 agents, shared parameters and not.

Each agent's MLP is 16 → 64 → 64 → 4 (tanh), on a batch of 32 observations per agent. The
"batch" of this case is the number of agents. The floor is the best hand-written version:
stacked weights and ``torch.baddbmm`` (one batched matrix product per layer for all agents)
without sharing, the plain MLP over the agent dim as a batch dim with sharing; a Python loop
over the agents is timed too (``"torch loop"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import rlmods
from benchmarks.registry import case, torchrl_or_none

INPUTS, OUTPUTS, CELLS, DEPTH, BATCH = 16, 4, 64, 2, 32
AGENTS = (4, 16, 64)


def _layers(net) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(weight, bias)`` of each linear layer, in order, from the stacked parameters."""
    params = net.params
    names = sorted({key[0] for key in params.keys(True, True)}, key=int)
    return [(params[name, "weight"].data, params[name, "bias"].data) for name in names]


def baddbmm_by_hand(layers, x):
    """Stacked weights ``(n, out, in)``: one ``baddbmm`` per layer for all agents.

    ``x`` ``(B, n, F)`` → ``(B, n, out)``.
    """
    h = x.transpose(0, 1)  # (n, B, F)
    for i, (weight, bias) in enumerate(layers):
        h = torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))  # (n, B, out)
        if i < len(layers) - 1:
            h = torch.tanh(h)
    return h.transpose(0, 1)


def shared_by_hand(layers, x):
    """One MLP for all agents: the agent dim is a batch dim."""
    h = x
    for i, (weight, bias) in enumerate(layers):
        h = F.linear(h, weight, bias)
        if i < len(layers) - 1:
            h = torch.tanh(h)
    return h


def loop_by_hand(layers, x, shared: bool):
    """A Python loop over the agents, each with its own weights (or the shared ones)."""
    outputs = []
    for agent in range(x.shape[1]):
        h = x[:, agent]
        for i, (weight, bias) in enumerate(layers):
            h = F.linear(h, weight, bias) if shared else F.linear(h, weight[agent], bias[agent])
            if i < len(layers) - 1:
                h = torch.tanh(h)
        outputs.append(h)
    return torch.stack(outputs, 1)


def _multiagent_case(setting, shared: bool) -> dict:
    agents, device = setting.batch, setting.device
    torch.manual_seed(0)
    kwargs = dict(centralized=False, share_params=shared, depth=DEPTH, num_cells=CELLS,
                  device=device)
    ours = rlmods.MultiAgentMLP(INPUTS, OUTPUTS, agents, **kwargs)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, agents, INPUTS, generator=generator).to(device)
    layers = _layers(ours)
    floor = shared_by_hand if shared else baddbmm_by_hand
    candidates = {"torch": lambda: floor(layers, x), "rlmods": lambda: ours(x),
                  "torch loop": lambda: loop_by_hand(layers, x, shared)}
    torchrl = torchrl_or_none()
    if torchrl is not None:
        theirs = torchrl.modules.MultiAgentMLP(INPUTS, OUTPUTS, agents, **kwargs)
        theirs.load_state_dict(ours.state_dict())
        candidates["torchrl"] = lambda: theirs(x)
    return candidates


@case("multiagent_mlp_unshared", batches=AGENTS,
      goals={4: {"rlmods/torch": 1.1}, 16: {"rlmods/torch": 1.1},
             64: {"rlmods/torch": 1.1, "rlmods/torch loop": 0.2}})
def unshared(setting):
    """MultiAgentMLP, one MLP per agent (batch = agents) vs stacked weights + baddbmm."""
    return _multiagent_case(setting, shared=False)


@case("multiagent_mlp_shared", batches=AGENTS, goals={n: {"rlmods/torch": 1.1} for n in AGENTS})
def shared(setting):
    """MultiAgentMLP, one MLP for all agents (batch = agents) vs the plain MLP."""
    return _multiagent_case(setting, shared=True)
