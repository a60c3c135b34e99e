"""rlmods' benchmark suite: each module against hand-written torch (the floor) and torchrl.

Run it from the repository root (one thread, interleaved rounds, medians)::

    python -m benchmarks --device cpu --json results.json
    python -m benchmarks --quick            # a smoke run (the test suite runs it)

A family of modules adds its cases in one file, ``benchmarks/cases/<family>.py``, whose
functions register themselves with :func:`benchmarks.registry.case`; the runner imports every
file in ``benchmarks/cases`` (see ``benchmarks/README.md``).
"""

from benchmarks.registry import CASES, Case, Setting, case, torchrl_or_none
from benchmarks.runner import main, run_cases

__all__ = ["CASES", "Case", "Setting", "case", "main", "run_cases", "torchrl_or_none"]
