"""Execute the book's notebooks in place, so the stored outputs are fresh.

    python tools/run_notebooks.py                 # every notebook under book/
    python tools/run_notebooks.py book/01_*.ipynb # some of them

Runs each notebook top to bottom with the current environment's kernel (cwd = book/),
keeps execution counts, records no timestamps, and prints each notebook's run time.
A cell that raises stops the run unless it is tagged ``raises-exception``.
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return seconds


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "book").glob("*.ipynb"))
    for path in paths:
        print(f"{path.name}: {run(path):.1f} s", flush=True)
