"""What the cases share: the benchmark network and torch.compile of an rlmods module."""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

OBS_DIM, HIDDEN, ACTIONS = 17, 256, 6


def mlp(out_features: int = ACTIONS, activation=nn.Tanh, device=None) -> nn.Sequential:
    """The issue's network: 17 → 256 → 256 → ``out_features``."""
    return nn.Sequential(nn.Linear(OBS_DIM, HIDDEN), activation(), nn.Linear(HIDDEN, HIDDEN),
                         activation(), nn.Linear(HIDDEN, out_features)).to(device)


def observation(setting) -> tuple[torch.Tensor, TensorDict]:
    """A seeded ``(batch, 17)`` observation, bare and in a TensorDict."""
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(setting.batch, OBS_DIM, generator=generator).to(setting.device)
    return obs, TensorDict(observation=obs, batch_size=[setting.batch], device=setting.device)


def with_compiled(candidates: dict, module, tensordict, setting) -> dict:
    """Add ``"rlmods compiled"`` (``torch.compile(fullgraph=True)``) when the run asks for it."""
    if setting.compile:
        compiled = torch.compile(module, fullgraph=True, dynamic=False)
        candidates["rlmods compiled"] = lambda: compiled(tensordict)
    return candidates
