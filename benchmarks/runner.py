"""Time every case's candidates in interleaved rounds; print a table; write JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Callable

import torch
from torch.utils import benchmark

from benchmarks.registry import RLMODS, TORCH, TORCHRL, Case, Setting, load_cases


def _round_median_us(fn: Callable[[], object], min_run_time: float) -> float:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=1)
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e6


def time_interleaved(candidates: dict, rounds: int, min_run_time: float,
                     warmup: int = 3) -> dict[str, dict]:
    """Per candidate: the median of its per-round medians (µs), their min and max, the rounds.

    Each round times every candidate once, in turn, so a burst of load on a shared machine
    spreads over all of them instead of falling on one; the ratios of the medians hold
    better than the absolute times.
    """
    for fn in candidates.values():  # warm-up: caches, lazy modules, compilation
        for _ in range(warmup):
            fn()
    per_round = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            per_round[name].append(_round_median_us(fn, min_run_time))
    return {name: {"median_us": statistics.median(values), "min_us": min(values),
                   "max_us": max(values), "rounds_us": values}
            for name, values in per_round.items()}


def ratios(times: dict[str, dict], goals: dict) -> dict[str, float]:
    """``a/b`` from the medians: ``rlmods/torch`` and ``rlmods/torchrl`` always, and each goal's.

    A goal names its two candidates, usually ``rlmods/<other>``; on a GPU the actor's
    ``rlmods cudagraph/torch cudagraph`` compares two CUDA-graphed candidates. A ratio whose
    candidates this run did not time (torchrl absent, no GPU) is left out.
    """
    keys = [f"{RLMODS}/{TORCH}", f"{RLMODS}/{TORCHRL}", *goals]
    out = {}
    for key in keys:
        num, den = key.split("/", 1)
        if num in times and den in times and key not in out:
            out[key] = times[num]["median_us"] / times[den]["median_us"]
    return out


def paired_ratios(times: dict[str, dict]) -> dict[str, float]:
    """``rlmods/<other>`` as the median over rounds of the two candidates' ratio in that round.

    Two candidates timed one after the other in a round see nearly the same load, so this
    statistic also resists a load that drifts over the run. Reported next to ``ratios`` (the
    ratios of the medians, which the goals read).
    """
    ours = times[RLMODS]["rounds_us"]
    return {f"{RLMODS}/{name}": statistics.median(a / b for a, b in zip(ours, t["rounds_us"]))
            for name, t in times.items() if name != RLMODS}


def run_case(case: Case, setting: Setting, rounds: int, min_run_time: float) -> dict:
    candidates = case.build(setting)
    missing = {RLMODS, TORCH} - set(candidates)
    if missing:
        raise ValueError(f"benchmarks: case {case.name!r} must return the candidates "
                         f"{sorted(missing)}, got {sorted(candidates)}.")
    with torch.no_grad():
        times = time_interleaved(candidates, rounds, min_run_time)
    goals = case.goals.get(setting.batch, {})
    result = {"case": case.name, "family": case.family, "description": case.description,
              "batch": setting.batch, "candidates": times, "ratios": ratios(times, goals),
              "goals": goals}
    result["met"] = {key: result["ratios"][key] <= bound for key, bound in goals.items()
                     if key in result["ratios"]}
    result["paired_ratios"] = paired_ratios(times)
    if case.steps is not None:
        steps = case.steps(setting)
        result["steps"] = steps
        result["steps_per_s"] = {name: steps / (t["median_us"] * 1e-6) for name, t in times.items()}
    return result


def run_cases(names=None, device="cpu", quick=False, compile=False, rounds=None,
              min_run_time=None, batches=None, log=print) -> dict:
    """Run the selected cases (all by default; a name or a family selects); return the report."""
    cases = load_cases()
    selected = [c for c in cases.values()
                if not names or c.name in names or c.family in names]
    unknown = set(names or []) - {c.name for c in cases.values()} - {c.family for c in cases.values()}
    if unknown:
        raise ValueError(f"benchmarks: unknown cases {sorted(unknown)}, known: {sorted(cases)}.")
    rounds = rounds or (2 if quick else 21)
    min_run_time = min_run_time or (0.002 if quick else 0.03)
    torch.set_num_threads(1)
    report = {"meta": _meta(device, quick, compile, rounds, min_run_time), "results": []}
    for case in selected:
        for batch in (batches or (case.batches[:1] if quick else case.batches)):
            setting = Setting(torch.device(device), batch, quick, compile)
            result = run_case(case, setting, rounds, min_run_time)
            report["results"].append(result)
            log(format_row(result))
    report["meta"]["load_after"] = _load()
    return report


def _load():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _meta(device: str, quick: bool, compile: bool, rounds: int, min_run_time: float) -> dict:
    import tensordict

    from benchmarks.registry import torchrl_or_none
    torchrl = torchrl_or_none()
    name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor()
    return {"device": device, "device_name": name or platform.machine(),
            "cpu_count": os.cpu_count(), "threads": 1, "quick": quick, "compile": compile,
            "rounds": rounds, "min_run_time_s": min_run_time, "python": platform.python_version(),
            "torch": torch.__version__, "tensordict": tensordict.__version__,
            "torchrl": getattr(torchrl, "__version__", None),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_before": _load()}


def _us(result: dict, name: str) -> str:
    t = result["candidates"].get(name)
    return f"{t['median_us']:>10.1f}" if t else f"{'-':>10}"


def _ratio(result: dict, key: str) -> str:
    value = result["ratios"].get(key)
    if value is None:
        return f"{'-':>8}"
    bound = result["goals"].get(key)
    mark = "" if bound is None else ("*" if value <= bound else "!")
    return f"{value:>7.2f}{mark or ' '}"


HEADER = (f"{'case':<32} {'batch':>5} {'torch us':>10} {'rlmods us':>10} {'torchrl us':>10} "
          f"{'/torch':>8} {'/torchrl':>8}  goals")


def format_row(result: dict) -> str:
    """One table line; ``*`` marks a goal met, ``!`` one missed; extras on indented lines."""
    goals = ", ".join(f"{key} <= {bound}" for key, bound in result["goals"].items()
                      if key in result["ratios"])  # a goal this run could measure
    line = (f"{result['case']:<32} {result['batch']:>5} {_us(result, TORCH)} "
            f"{_us(result, RLMODS)} {_us(result, TORCHRL)} {_ratio(result, 'rlmods/torch')} "
            f"{_ratio(result, 'rlmods/torchrl')}  {goals}")
    for name, t in result["candidates"].items():
        if name not in (RLMODS, TORCH, TORCHRL):
            key = f"rlmods/{name}"
            extra = f", rlmods/it {_ratio(result, key).strip()}" if key in result["ratios"] else ""
            line += f"\n    {name}: {t['median_us']:.1f} us{extra}"
    if "steps_per_s" in result:
        rates = ", ".join(f"{name} {rate:,.0f}" for name, rate in result["steps_per_s"].items())
        line += f"\n    steps/s ({result['steps']} steps a call): {rates}"
    return line


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--json", metavar="PATH", help="write the report to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: first batch size only, short timings")
    parser.add_argument("--compile", action="store_true",
                        help="also time torch.compile'd rlmods modules (slow to build)")
    parser.add_argument("--cases", nargs="+", metavar="NAME", help="case or family names")
    parser.add_argument("--batches", nargs="+", type=int, help="override the batch sizes")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 21; quick 2)")
    parser.add_argument("--min-run-time", type=float,
                        help="seconds per candidate per round (default 0.03; quick 0.002)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.list:
        for case in load_cases().values():
            print(f"{case.family:<16} {case.name:<28} batches {list(case.batches)}  "
                  f"{case.description}")
        return {}
    print(HEADER)
    report = run_cases(args.cases, args.device, args.quick, args.compile, args.rounds,
                       args.min_run_time, args.batches)
    print("ratios are of medians; * goal met, ! goal missed; one thread; "
          f"load {report['meta']['load_before']} -> {report['meta']['load_after']}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
        print(f"wrote {args.json}", file=sys.stderr)
    return report
