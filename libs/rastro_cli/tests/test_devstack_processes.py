"""Children are stopped for sure, and leftovers of a killed run are ended (and nothing else is)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from rastro_cli.devstack.processes import ChildProcess, end_leftovers, stop_all

pytestmark = pytest.mark.integration

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def _child(tmp_path: Path, name: str, code: str) -> ChildProcess:
    return ChildProcess(
        name,
        [sys.executable, "-c", code],
        log_path=tmp_path / f"{name}.log",
        pid_file=tmp_path / f"{name}.pid",
    )


def _wait_for_log(child: ChildProcess, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in child.log_tail() and time.monotonic() < deadline:
        time.sleep(0.02)


async def test_stop_all_kills_what_ignores_sigterm_after_the_grace(tmp_path: Path) -> None:
    polite = _child(tmp_path, "polite", "import time; time.sleep(60)")
    stubborn = _child(tmp_path, "stubborn", IGNORES_SIGTERM)
    polite.start()
    stubborn.start()
    _wait_for_log(stubborn, "up")
    started = time.monotonic()
    killed = await stop_all([polite, stubborn], grace=0.5)
    assert killed == ["stubborn"]
    assert time.monotonic() - started < 3
    assert polite.returncode == -15 and stubborn.returncode == -9
    assert not (tmp_path / "polite.pid").exists() and not (tmp_path / "stubborn.pid").exists()


def test_a_restarted_stack_ends_the_leftovers_of_a_killed_one(tmp_path: Path) -> None:
    orphan = _child(tmp_path, "ingest", "import time; time.sleep(60)")
    orphan.start()
    pid = orphan.pid
    assert pid is not None
    # A stranger whose pid file lies about its start time: a reused pid, not ours to end.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (tmp_path / "eta.pid").write_text(f'{{"pid": {stranger.pid}, "create_time": 1.0}}')
    try:
        assert end_leftovers(tmp_path, grace=2.0) == ["ingest"]
        assert not orphan.running
        assert stranger.poll() is None
        assert list(tmp_path.glob("*.pid")) == []
    finally:
        stranger.kill()
        stranger.wait()
        orphan.stop(0.1)
