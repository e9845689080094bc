"""Where the dev stack keeps its state: ``.rastro/`` in the directory ``rastro dev up`` runs from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DevLayout"]


@dataclass(frozen=True)
class DevLayout:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / ".rastro"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        """Pid files of running children, and the lock of the running ``rastro dev up``."""
        return self.state / "run"

    @property
    def pg_data(self) -> Path:
        return self.state / "pg"

    @property
    def admin_key(self) -> Path:
        return self.state / "admin.key"

    @property
    def demo_env(self) -> Path:
        return self.state / "demo.env"

    @property
    def inbox(self) -> Path:
        """The watched EDI/CSV inbox folder: ``<inbox>/<tenant>/`` (docs: services/ingest/README.md)."""
        return self.state / "inbox"

    @property
    def lock(self) -> Path:
        return self.run / "rastro-dev.lock"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def create(self) -> None:
        for directory in (self.logs, self.run):
            directory.mkdir(parents=True, exist_ok=True)
