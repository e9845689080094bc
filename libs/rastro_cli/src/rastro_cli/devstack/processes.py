"""Child processes of the dev stack: one log file each, a pid file, and a stop that always ends them.

Children run in their own session, so a Ctrl-C in the terminal reaches only ``rastro dev up``, which
then stops them in order. A pid file per child lets the next ``rastro dev up`` end the leftovers of a
run that was killed with SIGKILL before they hold its ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

__all__ = ["ChildProcess", "end_leftovers", "stop_all", "tail"]


class ChildProcess:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        pid_file: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.log_path = log_path
        self.pid_file = pid_file
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        output: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self.log_path.exists():
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
            self._log = output = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.pid_file is not None:
            created = psutil.Process(self._proc.pid).create_time()
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.write_text(json.dumps({"pid": self._proc.pid, "create_time": created}))

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started)."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def terminate(self) -> None:
        self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)

    def _signal_group(self, sig: signal.Signals) -> None:
        # The child leads its own process group: signal the group so grandchildren end too. Once the
        # child is reaped its pid (and so the group id) may belong to a stranger: leave it alone then.
        if self._proc is None or self._proc.returncode is not None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; blocking."""
        if self._proc is not None and self._proc.poll() is None:
            self.terminate()
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
                self._proc.wait()
        self._release()

    def _release(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines) if self.log_path is not None else ""


async def stop_all(children: Sequence[ChildProcess], grace: float = 10.0) -> list[str]:
    """SIGTERM every child at once, SIGKILL those still alive after ``grace``; names of the killed."""
    for child in children:
        if child.running:
            child.terminate()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(c.running for c in children):
            break
        await asyncio.sleep(0.05)
    killed = [c.name for c in children if c.running]
    for child in children:
        if child.running:
            child.kill()
    for child in children:
        child.stop(grace=2.0)  # reaps, closes the log, removes the pid file
    return killed


def end_leftovers(pid_dir: Path, grace: float = 5.0) -> list[str]:
    """End processes a previous, killed run left behind; names of those found alive."""
    found: list[psutil.Process] = []
    names: list[str] = []
    for pid_file in sorted(pid_dir.glob("*.pid")):
        try:
            record = json.loads(pid_file.read_text())
            proc = psutil.Process(int(record["pid"]))
            # Same pid and same start time: our child, not a stranger that reused the pid.
            if abs(proc.create_time() - float(record["create_time"])) < 0.01:
                found.append(proc)
                names.append(pid_file.stem)
        except (ValueError, KeyError, TypeError, psutil.Error):
            pass
        pid_file.unlink(missing_ok=True)
    for proc in found:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            pass
    _, alive = psutil.wait_procs(found, timeout=grace)
    for proc in alive:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    return names


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
