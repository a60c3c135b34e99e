"""The book's timing cells: median time per call of a few candidates, side by side."""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils import benchmark


def devices() -> list[str]:
    """``["cpu"]``, plus ``"cuda"`` when a GPU is present."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def median_us(fn: Callable[[], object], min_run_time: float = 0.2) -> float:
    """Median microseconds per call of ``fn`` (one thread, warm-up included)."""
    fn()
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=1)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e6


def _interleaved_us(candidates: dict, min_run_time: float, rounds: int = 5) -> dict[str, float]:
    """Each candidate's best median over ``rounds`` rounds, taken in turn.

    Timing the candidates one after the other lets a burst of load, or the first one's
    warm-up, fall on a single candidate; interleaving rounds and keeping each one's best
    median spreads that noise evenly, so the ratios hold better than the absolute times.
    """
    best = {name: float("inf") for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            best[name] = min(best[name], median_us(fn, min_run_time / rounds))
    return best


def compare(candidates: dict[str, Callable[[], object]], baseline: str | None = None,
            min_run_time: float = 0.2) -> str:
    """A small table: each candidate's median time and its ratio to ``baseline``.

    Candidates are timed in interleaved rounds (see ``_interleaved_us``).

    Examples:
        >>> table = compare({"add": lambda: torch.ones(2) + 1}, min_run_time=0.01)
        >>> table.splitlines()[0].split()
        ['candidate', 'time', 'ratio']
    """
    times = _interleaved_us(candidates, min_run_time)
    base = times[baseline or next(iter(times))]
    width = max(len(name) for name in times)
    lines = [f"{'candidate':<{width}}  {'time':>10}  {'ratio':>6}"]
    lines += [f"{name:<{width}}  {t:>7.1f} us  {t / base:>5.2f}x" for name, t in times.items()]
    return "\n".join(lines)
