"""Train the book's algorithms for several seeds with longer budgets than the notebooks' live runs.

    python tools/train_seeds.py --algorithms dqn c51 --seeds 0 1 2 3 4   # stored budgets
    python tools/train_seeds.py --algorithms c51 --seeds 5 --steps 2000 --out /tmp/x.json
    python tools/train_seeds.py --check                                  # stored results current?

The training code is the notebooks' own, not a copy: the code cells tagged ``train`` in the
algorithm's notebook (``ALGORITHMS`` below: one line per algorithm, added by its chapter) are
executed as they stand, then their ``train(seed, total_steps)`` is called for each seed with
the longer budget. ``train`` returns ``(evaluations, extra)`` where ``evaluations`` is a list of
``(step, [greedy return per evaluation episode])``. A notebook that trains several algorithms
either defines ``TRAINERS = {name: (train, HPARAMS)}``, or ``train_<name>`` functions, or one
``train`` that the registry's optional fifth entry (keyword arguments) specialises.
The package has no trainer; the chapters show these cells. Each algorithm's results go to its
own file under ``book/data/`` (several algorithms may share one file, as DQN and C51 on
CartPole do, and SAC and TD3 on Pendulum).

For each algorithm the result file stores the notebook's ``HPARAMS``, a hash of its training
cells (their code, without comments and docstrings) and, per seed, the greedy-evaluation
returns at every evaluation step. ``--check`` (and a test) recomputes the hash and the
hyper-parameters from the notebooks and fails when the stored results came from other code.
Runs use one thread each (``torch.set_num_threads(1)`` in the cells): CPU training is then
deterministic for a given seed on a given machine.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data"
# name: (notebook, environment, results file, default total steps[, keyword arguments of
# train: several algorithms of one notebook]). One line per algorithm.
ALGORITHMS = {
    "dqn": ("07_qvalue.ipynb", "CartPole-v1", "cartpole_seeds.json", 50_000),
    "c51": ("08_distributional.ipynb", "CartPole-v1", "cartpole_seeds.json", 50_000),
    "sac": ("09_value.ipynb", "Pendulum-v1", "pendulum_seeds.json", 10_000),
    "td3": ("09_value.ipynb", "Pendulum-v1", "pendulum_seeds.json", 10_000),
    "lstm_reinforce": ("10_recurrent.ipynb", "CueMemory", "memory_seeds.json", 460_800,
                       {"core": "lstm"}),
    "gru_reinforce": ("10_recurrent.ipynb", "CueMemory", "memory_seeds.json", 460_800,
                      {"core": "gru"}),
    "mlp_reinforce": ("10_recurrent.ipynb", "CueMemory", "memory_seeds.json", 460_800,
                      {"core": "mlp"}),
    "cem": ("11_planners.ipynb", "Pendulum-v1", "pendulum_planners.json", 200),
    "mppi": ("11_planners.ipynb", "Pendulum-v1", "pendulum_planners.json", 200),
    "dt": ("14_sequence_models.ipynb", "CartPole-v1", "dt_cartpole_seeds.json", 3_000),
}
NOTEBOOKS = {name: ROOT / "book" / notebook for name, (notebook, *_) in ALGORITHMS.items()}
DEFAULT_OUT = DATA / "cartpole_seeds.json"
TAG = "train"


def training_cells(algorithm: str) -> list[str]:
    """The sources of the notebook's code cells tagged ``train``, in order."""
    nb = nbformat.read(NOTEBOOKS[algorithm], as_version=4)
    cells = [cell.source for cell in nb.cells
             if cell.cell_type == "code" and TAG in cell.metadata.get("tags", [])]
    if not cells:
        raise ValueError(f"train_seeds: {NOTEBOOKS[algorithm].name} has no cell tagged {TAG!r}.")
    return cells


def code_hash(cells: list[str]) -> str:
    """A hash of the cells' code: comments, formatting and docstrings do not change it."""
    trees = []
    for source in cells:
        tree = ast.parse(source)
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and body
                    and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        trees.append(ast.dump(tree))
    return hashlib.sha256("\n".join(trees).encode()).hexdigest()[:16]


def load(algorithm: str) -> dict:
    """Execute the training cells in a fresh namespace and return it."""
    namespace = {"__name__": f"train_seeds_{algorithm}"}
    for source in training_cells(algorithm):
        exec(compile(source, str(NOTEBOOKS[algorithm]), "exec"), namespace)  # noqa: S102
    return namespace


def entry(namespace: dict, algorithm: str):
    """``(train, HPARAMS)``: the notebook's, or ``TRAINERS[algorithm]`` where it trains several."""
    if "TRAINERS" in namespace:
        return namespace["TRAINERS"][algorithm]
    return namespace.get(f"train_{algorithm}", namespace.get("train")), namespace["HPARAMS"]


def run_one(job: tuple[str, int, int]) -> tuple[str, int, dict]:
    algorithm, seed, steps = job
    train, _ = entry(load(algorithm), algorithm)
    start = time.perf_counter()
    evaluations, _ = train(seed, steps, **train_kwargs(algorithm))
    result = {"steps": [step for step, _ in evaluations],
              "returns": [[float(r) for r in returns] for _, returns in evaluations],
              "seconds": round(time.perf_counter() - start, 1)}
    return algorithm, seed, result


def train_kwargs(algorithm: str) -> dict:
    """The registry's keyword arguments for ``train`` (its optional fifth entry)."""
    return dict(ALGORITHMS[algorithm][4]) if len(ALGORITHMS[algorithm]) > 4 else {}


def header(algorithm: str, steps: int) -> dict:
    namespace = load(algorithm)
    import rlmods  # the copy the cells imported

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return {"notebook": str(NOTEBOOKS[algorithm].relative_to(ROOT)), "total_steps": steps,
            "hparams": entry(namespace, algorithm)[1],
            "code_hash": code_hash(training_cells(algorithm)),
            **({"train_kwargs": train_kwargs(algorithm)} if train_kwargs(algorithm) else {}),
            "git_commit": commit, "rlmods_path": str(Path(rlmods.__file__).parent),
            "seeds": {}}


def out_path(algorithm: str) -> Path:
    return DATA / ALGORITHMS[algorithm][2]


def check(path: Path | None = None) -> list[str]:
    """Differences between the stored results and the notebooks' current training code.

    ``path=None`` checks every results file the registry names.
    """
    paths = [path] if path else sorted({out_path(a) for a in ALGORITHMS if out_path(a).exists()})
    problems = []
    for p in paths:
        problems += _check_file(p)
    return problems


def _check_file(path: Path) -> list[str]:
    stored = json.loads(path.read_text())
    problems = []
    for algorithm, record in stored["algorithms"].items():
        hparams = entry(load(algorithm), algorithm)[1]
        if record["hparams"] != json.loads(json.dumps(hparams)):
            problems.append(f"{algorithm}: stored hparams {record['hparams']} != notebook {hparams}")
        current = code_hash(training_cells(algorithm))
        if record["code_hash"] != current:
            problems.append(f"{algorithm}: stored code_hash {record['code_hash']} != {current}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", default=list(NOTEBOOKS), choices=list(NOTEBOOKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=None,
                        help="total steps per run (default: the algorithm's stored budget)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--out", type=Path, default=None,
                        help="one results file for all (default: each algorithm's own file)")
    parser.add_argument("--check", action="store_true", help="compare stored results and code")
    args = parser.parse_args()
    if args.check:
        problems = check(args.out)
        print("\n".join(problems) or "stored results match the notebooks' training cells")
        sys.exit(1 if problems else 0)
    steps = {a: args.steps or ALGORITHMS[a][3] for a in args.algorithms}
    files = {a: args.out or out_path(a) for a in args.algorithms}
    results = {}  # file -> its content; an algorithm not rerun keeps its stored record
    for a in args.algorithms:
        path = files[a]
        if path not in results:
            results[path] = (json.loads(path.read_text()) if path.exists() and not args.out
                             else {"evaluation": "greedy (ExplorationType.DETERMINISTIC)",
                                   "algorithms": {}})
        results[path].setdefault("env", ALGORITHMS[a][1])
        results[path]["algorithms"][a] = header(a, steps[a])
    DATA.mkdir(parents=True, exist_ok=True)
    jobs = [(a, seed, steps[a]) for seed in args.seeds for a in args.algorithms]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for algorithm, seed, result in pool.imap_unordered(run_one, jobs):
            path = files[algorithm]
            results[path]["algorithms"][algorithm]["seeds"][str(seed)] = result
            path.write_text(json.dumps(results[path], indent=1) + "\n")  # after every run
            last = result["returns"][-1] if result["returns"] else [float("nan")]
            print(f"{algorithm} seed {seed}: final greedy return {sum(last) / len(last):.1f} "
                  f"({result['seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
