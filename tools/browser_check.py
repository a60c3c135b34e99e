"""Open every page of the built book in headless Chromium and fail on what a reader would see.

    python tools/browser_check.py                # build the book, then check it
    python tools/browser_check.py --no-build     # check the existing _build/html
    python tools/browser_check.py --no-build --screenshot book/15_capstone.html#the-same-script-on-torchrl:/tmp/a.png

The book is served from ``_build/html`` on localhost and each page of ``_toc.yml`` is opened in
Debian's ``chromium`` (installed with apt-get when missing), 1440 pixels wide, driven through the
DevTools protocol over a pipe (no driver package). A page fails the check when:

* it is missing, or any file it loads (an image, a script, a MathJax font) answers 404;
* an internal link points to a missing page or to an anchor that is not on its page;
* a Python traceback shows outside a notebook cell tagged ``raises-exception``;
* an image has not loaded (``naturalWidth == 0``);
* a line of code is cut off: a ``pre`` of a code cell or a code block is wider than its box,
  or a table of the text is wider than the page's column (cell outputs may scroll);
* math is left raw (``\\(``, ``\\[`` or ``$$`` in the text) or MathJax shows an error.

The preface must also link every chapter. Prints one line per page and a summary; exits 1 on
any problem.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
WIDTH, HEIGHT = 1440, 900

# Runs in the page once it has loaded and MathJax has typeset: what the checks need, as JSON.
PAGE_SCRIPT = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(done => { img.onload = img.onerror = done; })));
  const codeBoxes = document.querySelectorAll("div.cell_input pre, div.highlight pre");
  const cut = [...codeBoxes].filter(pre => pre.scrollWidth > pre.clientWidth + 1 &&
                                           !pre.closest("div.cell_output"))
    .map(pre => ({width: pre.scrollWidth, box: pre.clientWidth,
                  line: pre.textContent.split("\n").reduce((a, b) => a.length >= b.length ? a : b)
                        .slice(0, 80)}));
  const wideTables = [...document.querySelectorAll("table")]
    .filter(t => !t.closest("div.cell_output"))  // outputs scroll, as in Jupyter
    .filter(t => t.parentElement.scrollWidth > t.parentElement.clientWidth + 1)
    .map(t => t.textContent.trim().slice(0, 60));
  const tracebacks = [...document.querySelectorAll("pre")]
    .filter(pre => pre.textContent.includes("Traceback (most recent call last)"))
    .filter(pre => { const cell = pre.closest("div.cell");
                     return !(cell && cell.classList.contains("tag_raises-exception")); })
    .map(pre => pre.textContent.slice(0, 120));
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const rawMath = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("pre, code, script, style, mjx-container, .highlight")) continue;
    if (/\\\(|\\\[|\$\$/.test(node.textContent)) rawMath.push(node.textContent.slice(0, 80));
  }
  const main = document.querySelector("main") || document.body;
  return JSON.stringify({
    title: document.title,
    ids: [...document.querySelectorAll("[id]")].map(e => e.id)
          .concat([...document.querySelectorAll("a[name]")].map(e => e.name)),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    mainLinks: [...main.querySelectorAll("a[href]")].map(a => a.href),
    images: document.images.length,
    brokenImages: [...document.images].filter(i => !i.naturalWidth).map(i => i.src),
    math: document.querySelectorAll("mjx-container").length,
    mathErrors: document.querySelectorAll("mjx-merror").length,
    rawMath, cut, tracebacks, wideTables,
  });
})()
"""


def ensure_chromium() -> str:
    """The path of Debian's chromium, installed with apt-get if it is missing."""
    found = shutil.which("chromium")
    if found:
        return found
    print("chromium not found: apt-get install -y chromium", flush=True)
    subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ,
                                                              "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("chromium")


class Chromium:
    """Headless Chromium driven through the DevTools protocol on fds 3 and 4."""

    def __init__(self, binary: str):
        commands_r, self._commands = os.pipe()
        self._responses, responses_w = os.pipe()
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_r, responses_w)]

        def child_fds():
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.profile = tempfile.mkdtemp(prefix="browser-check-")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--hide-scrollbars", "--force-device-scale-factor=1", "--no-first-run",
             f"--user-data-dir={self.profile}", f"--window-size={WIDTH},{HEIGHT}",
             "about:blank"],
            close_fds=False, preexec_fn=child_fds, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (commands_r, responses_w, *high):
            os.close(fd)
        self._buffer, self._next_id, self.events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=WIDTH,
                  height=HEIGHT, deviceScaleFactor=1, mobile=False)

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._responses, 1 << 16)
            if not chunk:
                raise RuntimeError("browser_check: chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"browser_check: {method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == event for e in self.events):
                self.events = [e for e in self.events if e.get("method") != event]
                return
            self.events.append(self._read())
        raise TimeoutError(f"browser_check: no {event} within {timeout} s")

    def open(self, url: str) -> dict:
        self.events.clear()
        result = self.call("Page.navigate", session=True, url=url)
        if result.get("errorText"):
            raise RuntimeError(f"browser_check: {url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired")
        value = self.call("Runtime.evaluate", session=True, expression=PAGE_SCRIPT,
                          awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in value:
            raise RuntimeError(f"browser_check: {url}: {value['exceptionDetails']}")
        return json.loads(value["result"]["value"])

    def screenshot(self, anchor: str | None, path: Path) -> None:
        if anchor:
            self.call("Runtime.evaluate", session=True, expression=(  # an id or a CSS selector
                f"(document.getElementById({json.dumps(anchor)}) || "
                f"document.querySelector({json.dumps(anchor)})).scrollIntoView()"))
            time.sleep(0.3)
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Server(http.server.ThreadingHTTPServer):
    """Serves the built book on localhost and remembers every path that answered 404."""

    def __init__(self, directory: Path):
        self.missing: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code="-", size="-"):
                # Browsers ask every site for /favicon.ico; the book has none.
                if str(getattr(code, "value", code)) == "404" and self.path != "/favicon.ico":
                    server.missing.append(self.path)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


def toc_pages() -> list[str]:
    """The html path of every page of _toc.yml, preface first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return [f"{f}.html" for f in files]


def check(html: Path, screenshots: list[tuple[str, Path]], pages: list[str] | None = None
          ) -> list[str]:
    """Every problem found on ``pages`` (default: the toc's) of the site in ``html``."""
    pages, problems, seen = pages or toc_pages(), [], {}
    server = Server(html)
    browser = Chromium(ensure_chromium())
    try:
        for page in pages:
            if not (html / page).exists():
                problems.append(f"{page}: missing from {html}")
                continue
            start, before = time.perf_counter(), len(server.missing)
            info = browser.open(server.url + page)
            seen[page] = info
            found = [f"loads a missing file {p}" for p in server.missing[before:]]
            found += [f"image does not load: {src}" for src in info["brokenImages"]]
            found += [f"code line cut off ({c['width']} px in a {c['box']} px box): "
                      f"{c['line']!r}" for c in info["cut"]]
            found += [f"table cut off: {t!r}" for t in info["wideTables"]]
            found += [f"traceback outside a raises-exception cell: {t!r}"
                      for t in info["tracebacks"]]
            found += [f"raw math left: {m!r}" for m in info["rawMath"]]
            found += ["MathJax error"] * info["mathErrors"]
            problems += [f"{page}: {f}" for f in found]
            print(f"{'ok  ' if not found else 'FAIL'} {page}: {info['images']} images, "
                  f"{info['math']} formulas, {len(info['links'])} links "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
        for spec, path in screenshots:
            page, _, anchor = spec.partition("#")
            browser.open(server.url + page)
            browser.screenshot(anchor or None, path)
            print(f"screenshot: {spec} -> {path}")
    finally:
        browser.close()
        server.shutdown()
    problems += link_problems(html, server.url, seen)
    preface = seen.get(pages[0], {"mainLinks": []})
    linked = {urlparse(urldefrag(link)[0]).path.lstrip("/") for link in preface["mainLinks"]}
    problems += [f"{pages[0]}: does not link the chapter {page}"
                 for page in pages[1:] if page.split("/")[-1][:2].isdigit() and page not in linked]
    return problems


def link_problems(html: Path, base: str, seen: dict) -> list[str]:
    """Internal links to missing files or to anchors that their page does not have."""
    problems = []
    for page, info in seen.items():
        for link in sorted(set(info["links"])):
            if not link.startswith(base):
                continue  # another site: not checked (the check runs offline)
            target, anchor = urldefrag(link)
            path = urlparse(target).path.lstrip("/") or "index.html"
            if path.endswith("/"):
                path += "index.html"
            if not (html / path).exists():
                problems.append(f"{page}: broken link {path}")
            elif anchor and path in seen and anchor not in seen[path]["ids"]:
                problems.append(f"{page}: broken anchor {path}#{anchor}")
            elif anchor and path not in seen and path.endswith(".html") and (
                    f'id="{anchor}"' not in (html / path).read_text(errors="replace")):
                problems.append(f"{page}: broken anchor {path}#{anchor}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="check the existing build")
    parser.add_argument("--html", type=Path, default=HTML, help="the built site")
    parser.add_argument("--screenshot", action="append", default=[], metavar="PAGE[#ID]:PNG",
                        help="also save a 1440x900 screenshot of PAGE scrolled to ID "
                             "(an element id or a CSS selector)")
    args = parser.parse_args()
    start = time.perf_counter()
    if not args.no_build or not (args.html / "index.html").exists():
        jupyter_book = Path(sys.executable).with_name("jupyter-book")
        subprocess.run([str(jupyter_book), "build", str(ROOT), "-W", "-n", "--keep-going"],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"built the book ({time.perf_counter() - start:.0f} s)", flush=True)
    shots = [(spec.rsplit(":", 1)[0], Path(spec.rsplit(":", 1)[1])) for spec in args.screenshot]
    problems = check(args.html, shots)
    print("\n".join(problems))
    print(f"browser check: {len(toc_pages())} pages, {len(problems)} problems "
          f"({time.perf_counter() - start:.0f} s)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
