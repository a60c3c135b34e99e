"""The book shows the package's code verbatim, and every public definition somewhere."""

import ast
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import book_sync  # noqa: E402


def test_book_and_package_agree():
    problems = book_sync.check()
    assert not problems, "\n\n".join(problems)


def _write_notebook(path: Path, cells):
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": c, "metadata": {},
                                           "outputs": [], "execution_count": None} for c in cells],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


@pytest.fixture
def tiny_project(tmp_path, monkeypatch):
    """A package with one module and a book with one chapter, for the checker itself."""
    (tmp_path / "rlmods").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "rlmods" / "m.py").write_text(
        "class A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n\n\n"
        "def h(x):\n    return x + 1\n\n\ndef _private():\n    pass\n")
    monkeypatch.setattr(book_sync, "PACKAGE", tmp_path / "rlmods")
    monkeypatch.setattr(book_sync, "BOOK", tmp_path / "book")
    return tmp_path


def test_agreement_with_add_to_class(tiny_project):
    _write_notebook(tiny_project / "book" / "c.ipynb", [
        "# file: rlmods/m.py\nclass A:\n    def f(self):\n        return 1\n",
        "# file: rlmods/m.py\n@add_to_class(A)\ndef g(self):\n    return 2\n",
        "# file: rlmods/m.py\ndef h(x):\n    return x + 1\n"])
    assert book_sync.check() == []


def test_drift_is_reported_with_a_diff(tiny_project):
    _write_notebook(tiny_project / "book" / "c.ipynb", [
        "# file: rlmods/m.py\nclass A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n",
        "# file: rlmods/m.py\ndef h(x):\n    return x + 2\n"])
    problems = book_sync.check()
    assert len(problems) == 1 and "rlmods/m.py:h drifted" in problems[0] and "+    return x + 2" in problems[0]


def test_unshown_public_definition_and_method_are_reported(tiny_project):
    _write_notebook(tiny_project / "book" / "c.ipynb", [
        "# file: rlmods/m.py\nclass A:\n    def f(self):\n        return 1\n"])
    problems = book_sync.check()
    assert any("m.py:h is public but no chapter shows it" in p for p in problems)
    assert any("m.py:A.g is public but no chapter shows it" in p for p in problems)
    assert not any("_private" in p for p in problems)


def test_write_refreshes_cells_from_the_package(tiny_project):
    nb = tiny_project / "book" / "c.ipynb"
    _write_notebook(nb, ["# file: rlmods/m.py\nclass A: ...\n",
                         "# file: rlmods/m.py\n@add_to_class(A)\ndef g(self): ...\n",
                         "# file: rlmods/m.py\ndef h(): ...\n"])
    assert book_sync.write() == 3
    assert book_sync.check() == []
    first = "".join(json.loads(nb.read_text())["cells"][0]["source"])
    assert "def f" in first and "def g" not in first  # g lives in its own cell
    ast.parse(first)


def test_a_shown_constant_that_drifted_is_reported(tiny_project):
    (tiny_project / "rlmods" / "m.py").write_text(
        (tiny_project / "rlmods" / "m.py").read_text() + "\nLIMIT = 3\n")
    _write_notebook(tiny_project / "book" / "c.ipynb", [
        "# file: rlmods/m.py\nLIMIT = 4\n\nclass A:\n    def f(self):\n        return 1\n\n"
        "    def g(self):\n        return 2\n",
        "# file: rlmods/m.py\ndef h(x):\n    return x + 1\n"])
    problems = book_sync.check()
    assert len(problems) == 1 and "m.py:constant LIMIT drifted" in problems[0]
