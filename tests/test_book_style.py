"""The book's cell rules (CONTRIBUTING.md, "Notebooks"), checked on every chapter.

Small cells with prose between them are what makes a chapter read as a book rather than
as annotated source code; these rules fail the suite when a chapter drifts from them.
"""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
MAX_CELL_LINES = 40  # non-blank lines in one code cell
MAX_PACKAGE_RUN = 2  # package cells between two markdown cells
MAX_COLUMNS = 100  # what the widened code boxes show without cutting (_static/rlmods.css)
PACKAGE_MARKER = "# file: rlmods/"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def cell_size_problems(cells: list[dict]) -> list[str]:
    """Code cells over MAX_CELL_LINES non-blank lines."""
    out = []
    for i, cell in enumerate(cells):
        n = sum(1 for line in _source(cell).splitlines() if line.strip())
        if cell["cell_type"] == "code" and n > MAX_CELL_LINES:
            out.append(f"cell {i}: {n} non-blank lines (at most {MAX_CELL_LINES}): grow it with add_to_class")
    return out


def package_run_problems(cells: list[dict]) -> list[str]:
    """More than MAX_PACKAGE_RUN package cells with no markdown cell between them."""
    out, run = [], 0
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            run = 0
        elif _source(cell).startswith(PACKAGE_MARKER):
            run += 1
            if run == MAX_PACKAGE_RUN + 1:
                out.append(f"cell {i}: {run} package cells in a row with no prose between them")
    return out


def width_problems(cells: list[dict]) -> list[str]:
    """Code lines wider than the rendered code box."""
    return [f"cell {i}: a line of {len(line)} columns (at most {MAX_COLUMNS}): {line[:60]}..."
            for i, cell in enumerate(cells) if cell["cell_type"] == "code"
            for line in _source(cell).splitlines() if len(line) > MAX_COLUMNS]


def stored_output_problems(cells: list[dict]) -> list[str]:
    """Unexecuted code cells, and stored errors outside cells tagged raises-exception."""
    out = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not _source(cell).strip():
            continue
        if cell.get("execution_count") is None:
            out.append(f"cell {i}: never executed (strict nbval tests executed cells only)")
        tags = cell.get("metadata", {}).get("tags", [])
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])) and "raises-exception" not in tags:
            out.append(f"cell {i}: stores an error but is not tagged raises-exception")
    return out


RULES = [cell_size_problems, package_run_problems, width_problems, stored_output_problems]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_follows_the_cell_rules(notebook, rule):
    problems = rule(_cells(notebook))
    assert not problems, f"{notebook.name}:\n" + "\n".join(problems)


def _code(source):
    return {"cell_type": "code", "source": source, "metadata": {}, "outputs": [], "execution_count": 1}


def _markdown(source):
    return {"cell_type": "markdown", "source": source, "metadata": {}}


def test_the_rules_catch_what_they_should():
    long_cell = _code("\n".join(f"x{i} = {i}" for i in range(41)))
    assert cell_size_problems([long_cell]) and not cell_size_problems([_code("x = 1\n\n\n")])
    package = _code(PACKAGE_MARKER + "m.py\ndef f(): ...")
    assert package_run_problems([package, _code("f()"), package, package])  # demo cells don't break a run
    assert not package_run_problems([package, package, _markdown("Why."), package])
    assert width_problems([_code("y = " + "1 + " * 30 + "1")])
    assert not width_problems([_markdown("z" * 200)])
    unrun = _code("x = 1")
    unrun["execution_count"] = None
    error = _code("1 / 0")
    error["outputs"] = [{"output_type": "error", "ename": "ZeroDivisionError"}]
    assert len(stored_output_problems([unrun, error])) == 2
    error["metadata"]["tags"] = ["raises-exception"]
    assert not stored_output_problems([error])
