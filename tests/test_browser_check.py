"""tools/browser_check.py finds what it should, on a small site built to break each rule.

Needs Debian's chromium (tools/browser_check.py installs it; .ci/run runs the check first);
skipped on a machine without it. About 5 seconds.
"""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import browser_check  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")
PNG = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")


def page(body: str) -> str:
    return f"<html><head><title>t</title></head><body><main>{body}</main></body></html>"


@pytest.fixture
def site(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "dot.png").write_bytes(PNG)
    (book / "intro.html").write_text(page(
        '<a href="01_good.html">one</a> <a href="01_good.html#there">anchor</a>'))
    (book / "01_good.html").write_text(page(
        '<h1 id="there">Good</h1><img src="dot.png">'
        '<div class="cell tag_raises-exception"><pre>Traceback (most recent call last):</pre>'
        '</div><div class="highlight"><pre style="width: 400px">short = 1</pre></div>'))
    (book / "02_bad.html").write_text(page(
        '<img src="missing.png"> <a href="nowhere.html">x</a> <a href="01_good.html#gone">y</a>'
        '<div class="cell"><pre>Traceback (most recent call last):\nKeyError</pre></div>'
        '<p>raw $$x^2$$ math</p><div class="highlight"><pre style="width: 100px; '
        'overflow: auto">' + "a_long_line = " + "1 + " * 40 + "1</pre></div>"
        '<div style="width: 100px; overflow: auto"><table><tr><td>' + "wide_" * 40
        + '</td></tr></table></div>'))
    return tmp_path


def test_a_good_page_passes(site):
    assert browser_check.check(site, [], ["book/intro.html", "book/01_good.html"]) == []


def test_each_problem_is_found(site):
    problems = browser_check.check(site, [], ["book/intro.html", "book/01_good.html",
                                              "book/02_bad.html", "book/03_absent.html"])
    text = "\n".join(problems)
    assert "book/03_absent.html: missing" in text
    assert "book/02_bad.html: loads a missing file /book/missing.png" in text
    assert "book/02_bad.html: image does not load" in text
    assert "book/02_bad.html: broken link book/nowhere.html" in text
    assert "book/02_bad.html: broken anchor book/01_good.html#gone" in text
    assert "book/02_bad.html: traceback outside a raises-exception cell" in text
    assert "book/02_bad.html: raw math left: 'raw $$x^2$$ math'" in text
    assert "book/02_bad.html: code line cut off" in text
    assert "book/02_bad.html: table cut off" in text
    assert "book/intro.html: does not link the chapter book/02_bad.html" in text
    assert "book/intro.html: does not link the chapter book/03_absent.html" in text
    assert len(problems) == 11, text  # and nothing about the good pages
