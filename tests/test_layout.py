"""The package's layout rules (CONTRIBUTING.md): imports follow the chapters, key strings live once.

- A chapter's module imports only from earlier chapters' modules and from the shared private
  modules (``rlmods/_*.py``).
- No private name (``_x``) is imported from another chapter's module: what two chapters share
  lives in a shared private module.
- The key strings of ``rlmods/_keys.py`` are not retyped as string literals elsewhere.
"""

import ast
from pathlib import Path

import pytest

import rlmods._keys as keys

PACKAGE = Path(__file__).resolve().parents[1] / "rlmods"
# The chapters' modules in book order; a module may import from the ones before it.
CHAPTER_ORDER = ["specs", "envs", "nets", "actors", "distributions", "probabilistic", "exploration",
                 "qvalue", "distributional", "value", "rnn", "planners", "multiagent",
                 "world_models", "sequence_models"]
# Strings that are keys by meaning wherever they appear ("loc"/"scale" also name
# torch.distributions parameters, and "_" is too short to police).
KEY_STRINGS = {keys.ACTION, keys.OBSERVATION, keys.REWARD, keys.NEXT, keys.DONE, keys.TERMINATED,
               keys.TRUNCATED, keys.IS_INIT, keys.ACTION_MASK, keys.ACTION_VALUE,
               keys.CHOSEN_ACTION_VALUE, keys.STATE_VALUE, keys.STATE_ACTION_VALUE,
               keys.RECURRENT_STATE_H, keys.RECURRENT_STATE_C, keys.RECURRENT_STATE}


def _modules():
    return sorted(p for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _rlmods_imports(tree):
    """(module, names) for every ``from rlmods.<module> import names``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rlmods."):
            yield node.module.split(".", 1)[1], [alias.name for alias in node.names]


def import_problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    me = path.stem
    out = []
    for module, names in _rlmods_imports(tree):
        if module.startswith("_"):
            continue
        if me.startswith("_") and module not in ("specs",):
            out.append(f"{me}: a shared module imports the chapter module {module}")
        if me in CHAPTER_ORDER and module in CHAPTER_ORDER \
                and CHAPTER_ORDER.index(module) >= CHAPTER_ORDER.index(me):
            out.append(f"{me}: imports from {module}, which is not an earlier chapter")
        private = [name for name in names if name.startswith("_")]
        if private:
            out.append(f"{me}: imports private {private} from the chapter module {module}")
    return out


def _docstring_nodes(tree):
    out = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)):
            out.add(id(body[0].value))
    return out


def key_literal_problems(path: Path) -> list[str]:
    if path.stem == "_keys":
        return []
    tree = ast.parse(path.read_text())
    docstrings = _docstring_nodes(tree)
    return [f"{path.stem}:{node.lineno}: the key {node.value!r} is retyped; import it from rlmods._keys"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in KEY_STRINGS and id(node) not in docstrings]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_imports_follow_the_chapters(path):
    assert import_problems(path) == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_key_strings_are_defined_once(path):
    assert key_literal_problems(path) == []


def test_the_layout_rules_catch_what_they_should(tmp_path):
    bad = tmp_path / "actors.py"
    bad.write_text('"""Doc mentioning "action" is fine."""\nfrom rlmods.qvalue import QValueModule\n'
                   'from rlmods.specs import _helper\nKEY = "observation"\n')
    problems = import_problems(bad)
    assert any("not an earlier chapter" in p for p in problems)
    assert any("imports private ['_helper']" in p for p in problems)
    assert [p.split(": ", 1)[1] for p in key_literal_problems(bad)] == [
        "the key 'observation' is retyped; import it from rlmods._keys"]
