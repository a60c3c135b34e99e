"""Keep the book's code cells and the rlmods package in step.

A code cell whose first line is ``# file: rlmods/<module>.py`` declares that each
top-level ``def`` / ``class`` in it *is* the package's definition of that name.
A later cell may add one method to a class with ``@add_to_class(Cls)``.

Two uses:

* ``check()`` (run by ``tests/test_book_sync.py``) compares the shown code with the
  package by AST, without executing anything, and reports drift and public
  definitions that no chapter shows.
* ``python tools/book_sync.py --write`` rewrites the marked cells from the package,
  so one edits ``rlmods/*.py`` and refreshes the book (then reruns the notebook).

Module-level constants a cell shows (``ACTION = "action"``) are compared too, so a cell
cannot drift from the package's value; a constant need not be shown.

Docstrings are left out of the comparison: the package keeps them whole (``help()`` and
the API reference show them), while a cell shows at most a definition's one-line summary.
``--write`` keeps each cell's choice: a definition shown with a docstring gets the
package's summary line, one shown without gets none.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import inspect
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rlmods"
BOOK = ROOT / "book"
MARKER = re.compile(r"^# file: rlmods/(\w+)\.py\s*$")


@dataclass
class Part:
    """One shown piece of code: a top-level def/class, or one method of a class."""

    notebook: str
    cell: int
    module: str
    name: str  # "func", "Class" (header and class-level statements) or "Class.method"
    node: ast.AST
    source: str


def _is_def(node):
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


def _add_to_class_target(node):
    """``Cls`` if ``node`` is decorated with ``@add_to_class(Cls)``, else None."""
    for dec in getattr(node, "decorator_list", []):
        if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Name)
                and dec.func.id == "add_to_class" and len(dec.args) == 1
                and isinstance(dec.args[0], ast.Name)):
            return dec.args[0].id
    return None


def _strip_add_to_class(node):
    node = _copy(node)
    node.decorator_list = [d for d in node.decorator_list
                           if not (isinstance(d, ast.Call) and isinstance(d.func, ast.Name)
                                   and d.func.id == "add_to_class")]
    return node


def _copy(node):
    return copy.deepcopy(node)


def _header(cls: ast.ClassDef) -> ast.ClassDef:
    """The class without its methods: bases, decorators, docstring, class attributes."""
    head = _copy(cls)
    head.body = [n for n in head.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return head


def _docstring(node):
    """The docstring expression of a def/class, or None."""
    body = getattr(node, "body", None)
    if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
            and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return body[0]
    return None


def _dump(node) -> str:
    """The AST as text, docstrings left out: a book cell may omit or shorten them."""
    node = _copy(node)
    for item in ast.walk(node):
        if _docstring(item) is not None and len(item.body) > 1:
            item.body = item.body[1:]
        elif _docstring(item) is not None:  # a body that is only a docstring: compare nothing
            item.body = []
    return ast.dump(node, include_attributes=False)


def _documented(node, prefix="") -> set:
    """Qualified names (``f``, ``C``, ``C.m``) of the defs in ``node`` that carry a docstring."""
    name = prefix + node.name
    out = {name} if _docstring(node) is not None else set()
    if isinstance(node, ast.ClassDef):
        for item in node.body:
            if _is_def(item):
                out |= _documented(item, name + ".")
    return out


def _summarise_docstrings(text: str, keep: set) -> str:
    """``text`` (one def/class) with each docstring cut to its summary line, or dropped.

    A docstring stays (as its one-line summary) where its qualified name is in ``keep``,
    or where it is the whole body; the package keeps the full text for ``help()``.
    """
    tree = ast.parse(text)
    lines = text.split("\n")
    edits = []

    def visit(node, prefix=""):
        name = prefix + node.name
        doc = _docstring(node)
        if doc is not None:
            indent = lines[doc.lineno - 1][:doc.col_offset]
            summary = inspect.cleandoc(doc.value.value).split("\n", 1)[0].strip()
            if name in keep or len(node.body) == 1:
                edits.append((doc.lineno, doc.end_lineno, [f'{indent}"""{summary}"""']))
            else:
                edits.append((doc.lineno, doc.end_lineno, []))
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if _is_def(item):
                    visit(item, name + ".")

    for node in tree.body:
        if _is_def(node):
            visit(node)
    for start, end, new in sorted(edits, reverse=True):
        lines[start - 1:end] = new
    # no blank line left hanging right after a header whose docstring went away
    out = []
    for line in lines:
        if not line.strip() and out and out[-1].rstrip().endswith(":") and not out[-1].lstrip().startswith("#"):
            continue
        out.append(line)
    return "\n".join(out)


def _method_name(node) -> str:
    """``name``, or ``name.setter`` / ``name.deleter`` for a property's other halves."""
    for dec in node.decorator_list:
        if isinstance(dec, ast.Attribute) and dec.attr in ("setter", "deleter"):
            return f"{node.name}.{dec.attr}"
    return node.name


def _segment(source: str, node) -> str:
    """Source text of ``node`` including its decorators, dedented."""
    lines = source.splitlines()
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return textwrap.dedent("\n".join(lines[start - 1:node.end_lineno]))


def _parts_of(tree: ast.Module, source: str, module: str, where=("", -1)):
    """Split a module (or a cell) into comparable parts."""
    parts = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            parts.append(Part(*where, module, node.name, _header(node), _segment(source, node)))
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    parts.append(Part(*where, module, f"{node.name}.{_method_name(item)}", _copy(item),
                                      _segment(source, item)))
        elif _constant_names(node):
            parts.append(Part(*where, module, CONSTANT + ",".join(_constant_names(node)), _copy(node),
                              _segment(source, node)))
        elif _is_def(node):
            target = _add_to_class_target(node)
            if target is not None:
                parts.append(Part(*where, module, f"{target}.{_method_name(node)}", _strip_add_to_class(node),
                                  _segment(source, node)))
            else:
                parts.append(Part(*where, module, node.name, _copy(node), _segment(source, node)))
    return parts


CONSTANT = "constant "  # the name of a shown module-level assignment: "constant A,B"


def _constant_names(node) -> list[str]:
    """The names a module-level ``A = ...`` / ``A, B = ...`` / ``A: T = ...`` binds, else []."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)):
        return []
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for target in targets:
        for item in ast.walk(target):
            if isinstance(item, ast.Name):
                names.append(item.id)
            elif isinstance(item, (ast.Subscript, ast.Attribute)):
                return []  # LAZY_LAYERS[X] = Y changes a table: a statement, not a definition
    return names


def package_parts() -> dict[tuple[str, str], Part]:
    out = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.stem == "__init__":
            continue
        source = path.read_text()
        for part in _parts_of(ast.parse(source), source, path.stem):
            out[(part.module, part.name)] = part
    return out


def notebooks():
    return sorted(p for p in BOOK.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def marked_cells(nb_path: Path):
    """Yield (cell index, module, source) for every ``# file:`` cell of a notebook."""
    cells = json.loads(nb_path.read_text())["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        match = MARKER.match(source.split("\n", 1)[0])
        if match:
            yield i, match.group(1), source


def shown_parts() -> list[Part]:
    parts = []
    for nb in notebooks():
        for i, module, source in marked_cells(nb):
            parts += _parts_of(ast.parse(source), source, module, (nb.name, i))
    return parts


def check() -> list[str]:
    """Every problem found, as readable text; empty when book and package agree."""
    problems = []
    package = package_parts()
    shown = {}
    for part in shown_parts():
        key = (part.module, part.name)
        if key in shown:
            first = shown[key]
            problems.append(f"rlmods/{part.module}.py:{part.name} is shown twice: "
                            f"{first.notebook} cell {first.cell} and {part.notebook} cell {part.cell}")
            continue
        shown[key] = part
        if key not in package:
            problems.append(f"{part.notebook} cell {part.cell} shows rlmods/{part.module}.py:{part.name}, "
                            "which the package does not define")
            continue
        if _dump(part.node) != _dump(package[key].node):
            diff = "\n".join(difflib.unified_diff(
                package[key].source.splitlines(), part.source.splitlines(),
                f"rlmods/{part.module}.py", f"{part.notebook} cell {part.cell}", lineterm=""))
            problems.append(f"rlmods/{part.module}.py:{part.name} drifted from the book:\n{diff}")
    for nb in notebooks():
        for i, module, source in marked_cells(nb):
            if module in VERBATIM and source != _verbatim_text(source, module):
                problems.append(f"{nb.name} cell {i} must show rlmods/{module}.py word for word "
                                "(book_sync.py --write refreshes it)")
    shown_tops = {(module, name.split(".")[0]) for module, name in shown}
    for key, part in package.items():
        if key in shown or part.name.startswith(CONSTANT):  # a constant need not be shown
            continue
        top = part.name.split(".")[0]
        if not top.startswith("_") and not part.module.startswith("_"):
            problems.append(f"rlmods/{part.module}.py:{part.name} is public but no chapter shows it")
        elif (part.module, top) in shown_tops:
            problems.append(f"rlmods/{part.module}.py:{part.name} belongs to a shown class "
                            "but no chapter shows it")
    return problems


# Modules a chapter shows whole, word for word: every chapter that adds a key adds it to
# ``_keys.py``, and chapter 1's cell follows (the cell keeps its first two lines).
VERBATIM = {"_keys"}


def _verbatim_text(source: str, module: str) -> str:
    head = source.split("\n", 2)[:2]
    return "\n".join(head) + "\n" + (PACKAGE / f"{module}.py").read_text().strip()


def _rewrite_cell(source: str, module: str, package: dict, added: dict) -> str:
    """The cell with each shown definition replaced by the package's current text."""
    if module in VERBATIM:
        return _verbatim_text(source, module)
    tree = ast.parse(source)
    lines = source.split("\n")
    edits = []  # (first line, last line, new text), 1-based inclusive
    for node in tree.body:
        if not _is_def(node):
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        target = _add_to_class_target(node)
        if target is not None:
            pkg = package.get((module, f"{target}.{_method_name(node)}"))
            if pkg is None:
                continue
            new = f"@add_to_class({target})\n" + pkg.source
        elif isinstance(node, ast.ClassDef):
            new = _class_text(module, node, added.get((module, node.name), set()))
        else:
            pkg = package.get((module, node.name))
            if pkg is None:
                continue
            new = pkg.source
        edits.append((start, node.end_lineno, _summarise_docstrings(new, _documented(node))))
    for start, end, new in reversed(edits):
        lines[start - 1:end] = new.split("\n")
    return "\n".join(lines)


def _class_text(module, node, added_elsewhere):
    """The package's class, keeping the methods this cell showed and any unshown ones."""
    source = (PACKAGE / f"{module}.py").read_text()
    cls = next((n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == node.name), None)
    if cls is None:
        return _segment(source, node)
    lines = source.splitlines()
    keep = []  # line spans of the class body items this cell shows
    start = min([cls.lineno] + [d.lineno for d in cls.decorator_list])
    body_start = cls.body[0].lineno
    out = lines[start - 1:body_start - 1]
    for item in cls.body:
        first = min([item.lineno] + [d.lineno for d in getattr(item, "decorator_list", [])])
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _method_name(item) in added_elsewhere:
            continue
        keep.append((first, item.end_lineno))
    for i, (first, last) in enumerate(keep):
        if i:
            out.append("")
        out += lines[first - 1:last]
    return textwrap.dedent("\n".join(out))


def write(only=None) -> int:
    """Refresh the marked cells from the package; return the number of cells changed.

    ``only``: notebook paths to refresh (default: every chapter), so that refreshing one
    chapter never rewrites a notebook someone else is editing.
    """
    only = None if not only else {Path(p).resolve() for p in only}
    package = package_parts()
    added = {}  # (module, class) -> methods shown in @add_to_class cells
    for part in shown_parts():
        cls, _, method = part.name.partition(".")
        if method and part.source.lstrip().startswith("@add_to_class("):
            added.setdefault((part.module, cls), set()).add(method)
    changed = 0
    for nb in notebooks():
        if only is not None and nb.resolve() not in only:
            continue
        data = json.loads(nb.read_text())
        edited = 0
        for i, module, source in marked_cells(nb):
            new = _rewrite_cell(source, module, package, added)
            if new != source:
                data["cells"][i]["source"] = new.splitlines(keepends=True)
                edited += 1
        if edited:  # leave untouched notebooks alone (someone may be executing them)
            nb.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        changed += edited
    return changed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite marked cells from the package")
    parser.add_argument("notebooks", nargs="*", help="with --write: only these notebooks")
    args = parser.parse_args()
    if args.write:
        print(f"{write(args.notebooks)} cell(s) refreshed")
    problems = check()
    print("\n\n".join(problems) or "book and package agree")
    raise SystemExit(1 if problems else 0)
