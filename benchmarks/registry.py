"""The registry of benchmark cases: one decorated function per case, grouped by family."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

import torch

# The candidates every case may return; the ratios compare the first with the other two.
RLMODS, TORCH, TORCHRL = "rlmods", "torch", "torchrl"


@dataclass(frozen=True)
class Setting:
    """What one measurement is built for: the device, the batch size, the run's options."""

    device: torch.device
    batch: int
    quick: bool = False
    compile: bool = False  # also time torch.compile'd rlmods (slow to build on CPU)


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    ``build(setting)`` returns ``{candidate name: zero-argument callable}`` with at least
    ``"rlmods"`` and ``"torch"`` (the hand-written floor), ``"torchrl"`` when torchrl is
    installed, and any extra candidates (``"rlmods compiled"``, a second hand-written version).
    ``goals`` maps a batch size to ``{"rlmods/torch": bound, "rlmods/torchrl": bound}``, the
    issue's targets. ``steps`` is the number of env steps one call runs (rollouts), so the
    report can give steps per second.
    """

    name: str
    family: str
    build: Callable[[Setting], dict]
    batches: tuple = (1, 32, 1024)
    goals: dict = field(default_factory=dict)
    steps: Callable[[Setting], int] | None = None
    description: str = ""


CASES: dict[str, Case] = {}


def case(name: str, *, batches=(1, 32, 1024), goals=None, steps=None, description: str = ""):
    """Register the decorated ``build(setting)`` function as the case ``name``."""

    def register(build: Callable[[Setting], dict]) -> Callable[[Setting], dict]:
        if name in CASES:
            raise ValueError(f"benchmarks: case {name!r} is registered twice.")
        family = build.__module__.rsplit(".", 1)[-1]
        summary = (build.__doc__ or "").strip().split("\n")[0]
        CASES[name] = Case(name, family, build, tuple(batches), dict(goals or {}), steps,
                           description or summary)
        return build

    return register


def load_cases() -> dict[str, Case]:
    """Import every module of ``benchmarks.cases`` (each registers its cases), in name order."""
    from benchmarks import cases

    for info in sorted(pkgutil.iter_modules(cases.__path__), key=lambda info: info.name):
        importlib.import_module(f"{cases.__name__}.{info.name}")
    return CASES


def torchrl_or_none():
    """``torchrl`` when it is installed, else None (the package never needs it).

    pandas is imported first when present, so that torchrl is measured fairly: tensordict
    0.14's ``from_any`` looks pandas up on every call, a ``sys.path`` scan when it is absent.
    """
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    try:
        import torchrl.modules  # noqa: F401
        import torchrl.envs  # noqa: F401
        import torchrl
    except ImportError:
        return None
    return torchrl
