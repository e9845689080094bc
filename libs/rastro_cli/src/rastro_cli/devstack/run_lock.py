"""One ``rastro dev up`` per directory: a second one would end the first one's children as leftovers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil

__all__ = ["AlreadyRunning", "RunLock"]


class AlreadyRunning(RuntimeError):
    def __init__(self, pid: int) -> None:
        super().__init__(f"another `rastro dev up` (pid {pid}) is running from this directory")
        self.pid = pid


class RunLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def acquire(self) -> None:
        holder = self._holder()
        if holder is not None and holder != os.getpid():
            raise AlreadyRunning(holder)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = psutil.Process()
        self.path.write_text(json.dumps({"pid": me.pid, "create_time": me.create_time()}))

    def release(self) -> None:
        if self._holder() == os.getpid():
            self.path.unlink(missing_ok=True)

    def _holder(self) -> int | None:
        """The pid in the lock file if that process is still the one that wrote it."""
        try:
            record = json.loads(self.path.read_text())
            proc = psutil.Process(int(record["pid"]))
            if abs(proc.create_time() - float(record["create_time"])) < 0.01:
                return int(proc.pid)
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            pass
        return None
