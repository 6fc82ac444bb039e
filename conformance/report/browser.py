"""Open a report in headless Chromium: the rendered DOM, every console message and a screenshot.

Used by our browser test and by ``nox -s report``. Chromium runs with ``--no-sandbox`` and the
background-networking features off (the report needs no network); console output is read from
Chromium's log (``INFO:CONSOLE`` lines). The report itself never logs, so any console line is a defect.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
_CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")


@dataclass
class PageResult:
    dom: str
    console: list[str]
    screenshot: Path | None


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(binary: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="conformance-chromium-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                              timeout=timeout)


def open_page(html: Path, screenshot: Path | None = None, width: int = 1400, height: int = 2400,
              timeout: float = 120) -> PageResult:
    """Load ``html`` (a file) twice: once dumping the DOM after scripts ran, once taking a screenshot."""
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("Chromium not found: install Debian's `chromium` package (apt-get install chromium)")
    url = html.resolve().as_uri()
    dom_run = _run(binary, ["--dump-dom", url], timeout)
    console = [m.group(1) for line in dom_run.stderr.splitlines() if (m := _CONSOLE.search(line))]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        shot = _run(binary, [f"--screenshot={screenshot.resolve()}", f"--window-size={width},{height}", url], timeout)
        console += [m.group(1) for line in shot.stderr.splitlines() if (m := _CONSOLE.search(line))]
    return PageResult(dom_run.stdout, console, screenshot if screenshot and screenshot.exists() else None)
