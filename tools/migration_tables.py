"""Generate the book's cross-chapter tables from the chapters, the package and torchrl's page.

    python tools/migration_tables.py           # rewrite the generated blocks
    python tools/migration_tables.py --check   # exit 1 when a committed block is stale

Each generated block sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``
in a page under ``book/``; the text around the blocks is written by hand:

* ``book/migration.md``, ``differs``: one table of every chapter's "Where rlmods differs from
  torchrl" section (the markdown cell labelled ``(differs-NN-...)=``), read from the notebooks;
* ``book/migration.md``, ``scope``: every name on torchrl's ``torchrl.modules`` reference page
  (``tools/data/torchrl_modules_reference.txt``, the page the project started from), with the
  chapter that builds it, "planned" while that chapter's module is not in the package, or
  "not covered" with the reason from ``NOT_COVERED``; ``extras``: the other public names;
* ``book/api.md``, ``api``: autodoc entries for every public name of ``rlmods``, one section
  per chapter, each linking to the chapter that builds it;
* ``book/intro.md``, ``chapters``: the chapter list by part, with links to the chapters that
  exist and plain titles for the planned ones.

The chapter that *builds* a name is the first notebook with a ``# file: rlmods/...`` cell that
defines it; a re-exported name (tensordict's exploration types) belongs to the chapter of the
module that re-exports it. A new chapter joins every table when its notebook and module exist
and this script is re-run; a test (``tests/test_migration_tables.py``) fails while a block is
stale.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import inspect
import re
import sys
import types
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
REFERENCE_PAGE = ROOT / "tools" / "data" / "torchrl_modules_reference.txt"
PACKAGE_MARKER = "# file: rlmods/"

# The book's plan: (number, part, title until the notebook exists, modules it builds).
# The notebook of chapter N is book/NN_*.ipynb; parts are those of _toc.yml.
CHAPTERS = [
    (1, "Foundations", "TensorDict, specs and environments", ["specs", "envs"]),
    (2, "Foundations", "Networks", ["nets"]),
    (3, "Foundations", "Safe modules and actors", ["actors"]),
    (4, "Policies", "Distributions", ["distributions"]),
    (5, "Policies", "Probabilistic actors", ["probabilistic"]),
    (6, "Policies", "Exploration", ["exploration"]),
    (7, "Value-based", "Q-value actors", ["qvalue"]),
    (8, "Value-based", "Distributional DQN", ["distributional"]),
    (9, "Actor-critic", "Value operators and actor-critics", ["value"]),
    (10, "Recurrent and planning", "Recurrent modules", ["rnn"]),
    (11, "Recurrent and planning", "Planners", ["planners"]),
    (12, "Multi-agent and model-based", "Multi-agent networks", ["multiagent"]),
    (13, "Multi-agent and model-based", "World models", ["world_models"]),
    (14, "Sequence models", "Sequence models", ["sequence_models"]),
    (15, "Putting it together", "Capstone", []),
    (16, "Performance", "Performance", []),
]
# The names of torchrl's reference page that chapters 9-14 will build (the project's API.md);
# used only while a name is not in the package yet.
PLANNED = {
    9: "ValueOperator ActorValueOperator ActorCriticOperator ActorCriticWrapper DdpgMlpActor "
       "DdpgMlpQNet DdpgCnnActor DdpgCnnQNet",
    10: "LSTMCell LSTM GRUCell GRU LSTMModule GRUModule set_recurrent_mode recurrent_mode "
        "get_primers_from_module",
    11: "MPCPlannerBase CEMPlanner MPPIPlanner",
    12: "MultiAgentNetBase MultiAgentMLP MultiAgentConvNet QMixer VDNMixer",
    13: "WorldModelWrapper ObsEncoder ObsDecoder RSSMPrior RSSMPosterior DreamerActor",
    14: "DecisionTransformer DTActor OnlineDTActor DecisionTransformerInferenceWrapper "
        "LMHeadActorValueOperator",
}
# Names of the reference page that rlmods leaves out on purpose: name -> why.
NOT_COVERED: dict[str, str] = {}
# Where a torchrl user imports the names that are not on the torchrl.modules page.
TORCHRL_HOMES = ["torchrl.modules", "torchrl.data", "torchrl.envs", "torchrl.envs.utils",
                 "tensordict.nn"]
TORCHRL_RE = re.compile(r"\btorchrl\b")
RLMODS_RE = re.compile(r"\b(rlmods|here|we|ours)\b", re.IGNORECASE)


# --- chapters and names ------------------------------------------------------------------

def notebook(number: int) -> Path | None:
    """The notebook of chapter ``number`` (``book/NN_*.ipynb``), or None while it is planned."""
    found = sorted(BOOK.glob(f"{number:02d}_*.ipynb"))
    return found[0] if found else None


@functools.lru_cache(maxsize=None)
def cells(path: Path) -> list:
    """The notebook's cells (read once per run)."""
    return nbformat.read(path, as_version=4).cells


def chapter_title(number: int) -> str:
    path = notebook(number)
    if path is None:
        return next(title for n, _, title, _ in CHAPTERS if n == number)
    first = cells(path)[0].source
    return next(line[2:].strip() for line in first.splitlines() if line.startswith("# "))


def chapter_link(number: int) -> str:
    path = notebook(number)
    return f"{{doc}}`{path.stem}`" if path else f"planned: chapter {number}"


def public_names() -> list[str]:
    import rlmods

    return sorted(name for name, obj in vars(rlmods).items()
                  if not name.startswith("_") and not isinstance(obj, types.ModuleType))


def defined_in_notebooks() -> dict[str, int]:
    """name -> the first chapter with a package cell that defines it."""
    found: dict[str, int] = {}
    for number, *_ in CHAPTERS:
        path = notebook(number)
        if path is None:
            continue
        for cell in cells(path):
            if cell.cell_type != "code" or not cell.source.startswith(PACKAGE_MARKER):
                continue
            for node in ast.parse(cell.source).body:
                targets = ([node.name] if isinstance(node, (ast.ClassDef, ast.FunctionDef))
                           else [t.id for t in getattr(node, "targets", [])
                                 if isinstance(t, ast.Name)])
                for name in targets:
                    found.setdefault(name, number)
    return found


def module_chapters() -> dict[str, int]:
    return {module: number for number, _, _, modules in CHAPTERS for module in modules}


def chapter_of(name: str, defined: dict[str, int]) -> int | None:
    """The chapter that builds ``name``: its package cell, else the module that re-exports it,
    else (a name of a shared private module such as ``rlmods/_checks.py``) the first chapter
    that uses it."""
    import rlmods

    if name in defined:
        return defined[name]
    if not hasattr(rlmods, name):
        return next((n for n, names in PLANNED.items() if name in names.split()), None)
    obj, package = getattr(rlmods, name), Path(rlmods.__file__).parent
    for module, number in module_chapters().items():
        if not (package / f"{module}.py").exists():
            continue  # a planned module (never another checkout's copy on sys.path)
        namespace = vars(importlib.import_module(f"rlmods.{module}"))
        if namespace.get(name) is obj:
            return number
    for number, *_ in CHAPTERS:  # a shared private module's name: the first chapter using it
        path = notebook(number)
        if path and any(re.search(rf"\b{name}\b", cell.source) for cell in cells(path)):
            return number
    return None


# --- the torchrl.modules reference page --------------------------------------------------

def reference_names() -> list[tuple[str, str]]:
    """``(name, one-line summary)`` for every entry of torchrl's reference page, in order."""
    lines = REFERENCE_PAGE.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        match = re.fullmatch(r"([A-Za-z_]\w*)\((.*)\)", line.strip())
        if match and not line.startswith(">>>"):
            summary = next((s.strip() for s in lines[i + 1:] if s.strip()), "")
            out.append((match.group(1), summary))
    return out


# --- the "Where rlmods differs" sections -------------------------------------------------

def differs_sections() -> list[tuple[int, str, str]]:
    """``(chapter, label, section text without its heading)`` for every chapter."""
    out = []
    for number, *_ in CHAPTERS:
        path = notebook(number)
        if path is None:
            continue
        for cell in cells(path):
            match = re.search(r"^\((differs-\d\d-[\w-]+)\)=\n#+ [^\n]*\n", cell.source, re.M)
            if cell.cell_type == "markdown" and match:
                body = cell.source[match.end():]
                heading = re.search(r"^#", body, re.M)
                out.append((number, match.group(1), body[:heading.start()] if heading else body))
    return out


def split_items(text: str) -> list[str | list[str]]:
    """Bullet items (as one string each) and table rows (as lists of cells)."""
    items: list = []
    for line in text.splitlines():
        if re.match(r"[*-] ", line):
            items.append(line[2:].strip())
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                items.append(cells)
        elif line.strip() and items and isinstance(items[-1], str):
            items[-1] += " " + line.strip()
    tables = [i for i in items if isinstance(i, list)]
    if tables:  # the first row of a table is its header
        items.remove(tables[0])
    return items


def _outside(text: str) -> str:
    """``text`` without its parenthesised and backticked parts."""
    out, depth, tick = [], 0, False
    for ch in text:
        tick ^= ch == "`"
        if not tick:
            depth += (ch == "(") - (ch == ")")
        if not tick and depth == 0 and ch not in "()`":
            out.append(ch)
    return "".join(out)


def sentences(text: str) -> list[str]:
    """Sentences and semicolon clauses, outside backticks and parentheses."""
    out, depth, tick, start = [], 0, False, 0
    for i, ch in enumerate(text):
        tick ^= ch == "`"
        if not tick:
            depth += (ch == "(") - (ch == ")")
        end = i + 1 == len(text) or (text[i + 1] == " " and (
            ch == ";" or (ch == "." and i + 2 < len(text) and text[i + 2] not in "ea")))
        if not tick and depth == 0 and ch in ".;" and end:
            out.append(text[start:i + 1].strip())
            start = i + 1
    if text[start:].strip():
        out.append(text[start:].strip())
    return [s for s in out if s.strip(".;:, ")]


def _sentence(text: str) -> str:
    """One tidy sentence: leading punctuation gone, a capital first letter, a full stop."""
    text = text.strip().lstrip(",;: ").rstrip(",;: ")
    if not text:
        return ""
    if "a" <= text[0] <= "z" and not text.startswith(("rlmods", "torchrl")):
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", ".)")) else text + "."


def _about_torchrl(text: str) -> bool:
    """Whether torchrl is the subject: the text (parentheses left out) starts with it."""
    return re.match(r"\W*(with [^,]*, )?torchrl\b", _outside(text), re.IGNORECASE) is not None


def _moved_parentheticals(text: str) -> tuple[str, list[str]]:
    """``text`` without its parentheticals about torchrl, and those parentheticals."""
    moved = []

    def take(match):
        if _about_torchrl(match.group(1)):
            moved.append(match.group(1))
            return ""
        return match.group(0)

    return re.sub(r"\s?\(((?:[^()]|\([^()]*\))*)\)", take, text), moved


def split_sides(lead: str, body: str) -> tuple[str, str]:
    """What torchrl does and what rlmods does, sentence by sentence.

    A sentence whose subject is torchrl ("torchrl 0.14 samples...", "torchrl's hook fails...")
    describes torchrl, and so does an aside in parentheses that starts with torchrl; a
    sentence "where torchrl ..., rlmods ..." is cut at the comma; everything else, the bold
    lead included, describes rlmods.
    """
    if lead.endswith(".") or body.startswith(":") or not lead:  # a headline, or a label
        text, ours = body.lstrip(": "), [lead] if lead.endswith(".") else []
    else:  # the subject of the first sentence
        text, ours = lead + ("" if body.startswith(",") else " ") + body, []
    theirs = []
    for sentence in sentences(text):
        cut = re.search(r",\s+(?=rlmods\b)", sentence)
        where = re.search(r"\bwhere (?=torchrl\b)", sentence, re.IGNORECASE)
        if where and cut and where.start() < cut.start():
            theirs.append(sentence[where.end():cut.start()])
            ours.append(sentence[:where.start()] + sentence[cut.end():])
        elif _about_torchrl(sentence):
            theirs.append(sentence)
        else:
            rest, moved = _moved_parentheticals(sentence)
            ours.append(rest)
            theirs += moved
    tidy = lambda parts: " ".join(filter(None, map(_sentence, parts)))  # noqa: E731
    return tidy(theirs) or "\u2014", tidy(ours) or "\u2014"


def names_in(text: str, public: set[str]) -> list[str]:
    found = []
    for token in re.findall(r"`([^`]+)`", text):
        head = re.match(r"[A-Za-z_]\w*", token)
        if head and head.group(0) in public and token.split("(")[0] not in found:
            found.append(token.split("(")[0])
    return found[:3]


def cell(text: str) -> str:
    return text.replace("\n", " ")


def list_table(header: list[str], rows: list[list[str]], widths: str) -> str:
    """A MyST list-table: column widths that hold on a 1440-pixel screen, cells on one line."""
    lines = ["```{list-table}", ":header-rows: 1", f":widths: {widths}", ":class: fit-columns",
             ""]
    for row in [header, *rows]:
        lines += [f"* - {row[0]}", *[f"  - {c}" for c in row[1:]]]
    return "\n".join(lines + ["```"])


def differs_table() -> str:
    public = set(public_names())
    rows = []
    for number, _, text in differs_sections():
        for item in split_items(text):
            if isinstance(item, list):  # a table row: name | torchrl | rlmods
                what, theirs, ours = item[0], item[1], item[2]
            else:
                lead = re.match(r"\*\*(.+?)\*\*\s*", item)
                body = item[lead.end():] if lead else item
                names = names_in(item, public)
                what = (lead.group(1).rstrip(".") if lead else
                        ", ".join(f"`{n}`" for n in names) or "Errors and arguments")
                theirs, ours = split_sides(lead.group(1) if lead else "", body)
            rows.append([cell(what), cell(theirs), cell(ours),
                         f"{{ref}}`{number} <{label_of(number)}>`"])
    return list_table(["What", "torchrl 0.14.1", "rlmods", "Ch."], rows, "20 36 38 6")


def label_of(number: int) -> str:
    return next(label for n, label, _ in differs_sections() if n == number)


def scope_table() -> tuple[str, list[str]]:
    import rlmods

    defined, problems, rows = defined_in_notebooks(), [], []
    for name, summary in reference_names():
        number = chapter_of(name, defined)
        if hasattr(rlmods, name) and number is not None and notebook(number):
            status = f"{{doc}}`{notebook(number).stem}`"
        elif name in NOT_COVERED:
            status = f"not covered: {NOT_COVERED[name]}"
        elif number is not None and notebook(number) is None:
            status = f"planned: chapter {number}, *{chapter_title(number)}*"
        else:
            status = "**missing**"
            problems.append(f"{name}: on torchrl's page, not in rlmods, and no reason in "
                            "NOT_COVERED")
        rows.append([f"`{name}`", cell(summary), status])
    header = ["torchrl.modules", "what it is (torchrl's summary)", "rlmods"]
    return list_table(header, rows, "28 42 30"), problems


def torchrl_home(name: str) -> str:
    for module in TORCHRL_HOMES:
        try:
            if hasattr(importlib.import_module(module), name):
                return f"`{module}`"
        except ImportError:
            pass
    return "rlmods only"


def extras_table() -> str:
    on_page = {name for name, _ in reference_names()}
    defined, rows = defined_in_notebooks(), []
    for name in public_names():
        if name not in on_page:
            number = chapter_of(name, defined)
            where = chapter_link(number) if number else "(package only)"
            rows.append([f"`{name}`", torchrl_home(name), where])
    return list_table(["rlmods", "torchrl / tensordict", "chapter"], rows, "34 33 33")


# --- the API reference -------------------------------------------------------------------

def api_reference() -> str:
    import rlmods

    defined, by_chapter = defined_in_notebooks(), {}
    for name in public_names():
        by_chapter.setdefault(chapter_of(name, defined), []).append(name)
    blocks = []
    for number, *_ in CHAPTERS:
        names = by_chapter.get(number)
        if not names or notebook(number) is None:
            continue
        entries, reexports = [], []
        for name in names:
            obj = getattr(rlmods, name)
            if not getattr(obj, "__module__", "").startswith("rlmods"):
                reexports.append(f"`{name}` (`{obj.__module__}.{obj.__name__}`)")
            elif inspect.isclass(obj):
                entries.append(f".. autoclass:: {name}\n   :members:")
            else:
                entries.append(f".. autofunction:: {name}")
        text = [f"## {chapter_title(number)}", "",
                f"Built in {{doc}}`{notebook(number).stem}`."]
        if reexports:
            text += ["", "Re-exported as torchrl re-exports them: " + ", ".join(reexports) + "."]
        if entries:
            text += ["", "```{eval-rst}", ".. currentmodule:: rlmods", "",
                     "\n\n".join(entries), "```"]
        blocks.append("\n".join(text))
    return "\n\n".join(blocks)


# --- the preface's chapter list ----------------------------------------------------------

def chapter_list() -> str:
    lines, part = [], None
    for number, this_part, _, _ in CHAPTERS:
        if this_part != part:
            part = this_part
            lines += ["", f"**{part}**", ""]
        path = notebook(number)
        entry = (f"{{doc}}`{path.stem}`" if path else
                 f"{chapter_title(number)} (being written)")
        lines.append(f"{number}. {entry}")
    return "\n".join(lines).strip()


# --- writing and checking ----------------------------------------------------------------

BLOCKS = {  # (page, block name) -> generator
    ("migration.md", "differs"): differs_table,
    ("migration.md", "scope"): lambda: scope_table()[0],
    ("migration.md", "extras"): extras_table,
    ("api.md", "api"): api_reference,
    ("intro.md", "chapters"): chapter_list,
}


def render(page_text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- generated: {name} -->\n)(?:(?!<!-- ).*?\n)??"
                         r"(<!-- end generated -->)", re.S)
    if not pattern.search(page_text):
        raise ValueError(f"migration_tables: the page has no block {name!r}")
    return pattern.sub(lambda m: m.group(1) + content + "\n" + m.group(2), page_text)


def stale_pages() -> dict[Path, str]:
    """Pages whose generated blocks differ from what the script writes: path -> new text."""
    pages: dict[Path, str] = {}
    for (page, name), make in BLOCKS.items():
        path = BOOK / page
        pages[path] = render(pages.get(path, path.read_text()), name, make())
    return {path: text for path, text in pages.items() if path.read_text() != text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when a page is stale")
    args = parser.parse_args()
    problems = scope_table()[1]
    if problems:
        sys.exit("\n".join(problems))
    stale = stale_pages()
    for path, text in stale.items():
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        sys.exit(1)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
