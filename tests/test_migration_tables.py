"""The generated pages (migration tables, API reference, preface chapter list) are current, and
the generator reads the chapters and torchrl's reference page the way it should."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import migration_tables as mt  # noqa: E402

import rlmods  # noqa: E402


def test_committed_pages_are_current():
    stale = mt.stale_pages()
    assert not stale, ("re-run `python tools/migration_tables.py`: stale "
                       + ", ".join(str(p.relative_to(ROOT)) for p in stale))


def test_every_reference_page_name_is_covered_planned_or_explained():
    table, problems = mt.scope_table()
    assert not problems, problems
    names = [name for name, _ in mt.reference_names()]
    assert len(names) == 84 and len(set(names)) == 84  # the page's entries, each once
    for name in names:
        lines = table.splitlines()
        status = lines[lines.index(f"* - `{name}`") + 2]  # name, summary, status
        assert ("{doc}" in status) == hasattr(rlmods, name), status


def test_the_reference_page_parser_reads_names_and_summaries():
    entries = dict(mt.reference_names())
    assert entries["QValueActor"] == "A Q-Value actor class."
    assert entries["mappings"].startswith("Given an input string")
    assert "env" not in entries and "policy" not in entries  # doctest lines are not entries


def test_every_public_name_has_a_chapter_and_an_api_entry():
    api = (ROOT / "book" / "api.md").read_text()
    defined = mt.defined_in_notebooks()
    for name in mt.public_names():
        number = mt.chapter_of(name, defined)
        assert number is not None and mt.notebook(number) is not None, name
        obj = getattr(rlmods, name)
        if obj.__module__.startswith("rlmods"):
            assert re.search(rf"\.\. auto(class|function):: {name}\n", api), name
        else:
            assert f"`{name}`" in api, name


def test_names_belong_to_the_chapter_that_defines_them():
    defined = mt.defined_in_notebooks()
    assert mt.chapter_of("QValueActor", defined) == 7
    assert mt.chapter_of("categorical_projection", defined) == 8
    assert mt.chapter_of("ExplorationType", defined) == 1  # re-exported by rlmods.envs
    assert mt.chapter_of("InvalidValueError", defined) == 1  # rlmods/_checks.py, chapter 1
    assert mt.chapter_of("LSTMModule", defined) == 10  # API.md's plan, or its notebook


def test_every_differs_section_joins_the_table():
    table = mt.differs_table()
    for number, label, text in mt.differs_sections():
        rows = [line for line in table.splitlines() if f"<{label}>" in line]  # one per row
        assert len(rows) == len(mt.split_items(text)) > 0, label


@pytest.mark.parametrize("lead, body, theirs, ours", [
    ("", "`OneHot.project` is the argmax; torchrl 0.14 samples among positive entries.",
     "torchrl 0.14 samples among positive entries.", "`OneHot.project` is the argmax."),
    ("Errors.", "Where torchrl raises `RuntimeError` (a bad key), rlmods raises `X`.",
     "torchrl raises `RuntimeError` (a bad key).", "Errors. rlmods raises `X`."),
    ("", "`ConvNet` honours `bias=False` (torchrl ignores it), and works.",
     "torchrl ignores it.", "`ConvNet` honours `bias=False`, and works."),
    ("Batched specs", ": projection broadcasts.", "\u2014", "Projection broadcasts."),
    ("Keyword calls", "with `safe=True` are projected (torchrl's hook fails).",
     "torchrl's hook fails.", "Keyword calls with `safe=True` are projected."),
])
def test_split_sides(lead, body, theirs, ours):
    assert mt.split_sides(lead, body) == (theirs, ours)


def test_planned_chapters_are_plain_text_and_written_ones_are_links():
    listing = mt.chapter_list()
    for number, _, title, _ in mt.CHAPTERS:
        path = mt.notebook(number)
        expected = f"{{doc}}`{path.stem}`" if path else f"{title} (being written)"
        assert f"{number}. {expected}" in listing


def test_render_replaces_only_the_block_and_the_cli_checks(tmp_path):
    page = tmp_path / "intro.md"
    page.write_text("x\n<!-- generated: chapters -->\nold\n<!-- end generated -->\ny\n")
    assert mt.render(page.read_text(), "chapters", "new") == (
        "x\n<!-- generated: chapters -->\nnew\n<!-- end generated -->\ny\n")
    with pytest.raises(ValueError, match="no block 'api'"):
        mt.render(page.read_text(), "api", "new")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "migration_tables.py"),
                             "--check"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_migration_pages_code_runs(tmp_path, monkeypatch):
    """The import swap and the checkpoint example of book/migration.md, as a reader runs them."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "book" / "migration.md").read_text(), re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        exec(compile(block, "migration.md", "exec"), namespace)  # noqa: S102
    assert namespace["QValueActor"] is rlmods.QValueActor  # the "after" imports won
    torch = namespace["torch"]
    obs = torch.randn(8, 4)
    ours, theirs = namespace["ours"], namespace["theirs"]
    from tensordict import TensorDict
    td = TensorDict(observation=obs, batch_size=[8])
    assert torch.equal(ours(td.clone())["action"], theirs(td.clone())["action"])
