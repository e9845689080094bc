"""Debian's chromium for the browser tests, installed in the background while the other tests run.

``start()`` (called by tests/conftest.py once collection shows a browser test) launches
``apt-get install chromium`` when it is missing and we are root with apt-get; ``wait()`` gives it the
rest of its time and says why chromium is still missing, if it is. The install overlaps the minutes of
unit and integration tests before the browser tests, instead of adding to them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

__all__ = ["CHROMIUM", "start", "wait"]

CHROMIUM = Path("/usr/bin/chromium")
_COMMAND = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
_install: tuple[subprocess.Popen[bytes], float] | None = None


def start() -> None:
    global _install
    if _install is not None or CHROMIUM.exists() or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    process = subprocess.Popen(_COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _install = (process, time.monotonic())


def wait(timeout_s: float) -> str:
    """Wait for a started install (at most ``timeout_s`` from its start); why chromium is missing."""
    if CHROMIUM.exists():
        return ""
    if _install is None:
        start()
    if _install is None:
        return "it is not installed, and installing it needs root and apt-get"
    process, started = _install
    try:
        process.wait(max(1.0, timeout_s - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        process.kill()
        return f"`apt-get install chromium` took longer than {timeout_s:.0f} s"
    if process.returncode == 0:
        return "" if CHROMIUM.exists() else "`apt-get install chromium` succeeded but did not provide it"
    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
    tail = err.strip().splitlines()[-1:] or [""]
    return f"`apt-get install chromium` failed ({process.returncode}): {tail[0]}"
