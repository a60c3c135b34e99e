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


def cuda_graphed(function, inputs: torch.Tensor):
    """``function(inputs)`` captured in a CUDA graph: a call copies the inputs in and replays it.

    The plain-torch counterpart of ``tensordict.nn.CudaGraphModule``: warm-up on a side
    stream, capture once, then each call is one copy and one replay.
    """
    static = inputs.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            function(static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        output = function(static)

    def replay():
        static.copy_(inputs)
        graph.replay()
        return output

    return replay


def with_cuda_graphs(candidates: dict, module, net, obs, tensordict, setting) -> dict:
    """On a GPU, add ``"rlmods cudagraph"`` (``CudaGraphModule``) and ``"torch cudagraph"``."""
    if setting.device.type == "cuda":
        from tensordict.nn import CudaGraphModule

        graphed = CudaGraphModule(module, warmup=3)
        candidates["rlmods cudagraph"] = lambda: graphed(tensordict)
        candidates["torch cudagraph"] = cuda_graphed(net, obs)
    return candidates
