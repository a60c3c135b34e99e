"""The rendered book builds from the stored outputs with zero warnings."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_book_builds_without_warnings(tmp_path):
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else shutil.which("jupyter-book"),
               "build", str(ROOT), "--path-output", str(tmp_path), "-W", "-n", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "WARNING" not in log, log[-5000:]
    assert (tmp_path / "_build" / "html" / "index.html").exists()
