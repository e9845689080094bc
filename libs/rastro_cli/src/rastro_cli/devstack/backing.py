"""The backing services of the dev stack: embedded PostgreSQL and embedded Tansu.

Both start with blocking calls, run in a thread so a Ctrl-C meanwhile is seen at once; a start already
under way then finishes and is stopped with the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Protocol, TypeVar

from rastro_cli.devstack.layout import DevLayout
from rastro_cli.devstack.ports import port_is_free

if TYPE_CHECKING:
    from rastro_cli.devstack.broker import BrokerProcess
    from rastro_cli.devstack.postgres import EmbeddedPostgres

__all__ = ["DEV_BROKER_PORT", "BackingError", "start_embedded_broker", "start_embedded_postgres"]

DEV_BROKER_PORT = 19092  # what KitSettings defaults to, so a bare `uv run rastro …` finds it


class BackingError(RuntimeError):
    """Postgres or Tansu did not start."""


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_S = TypeVar("_S", bound=_Stoppable)


async def start_embedded_postgres(cleanup: AsyncExitStack, layout: DevLayout) -> EmbeddedPostgres:
    from rastro_cli.devstack.postgres import start_postgres

    try:
        pg = await _in_thread(cleanup, lambda: start_postgres(layout.pg_data))
    except Exception as exc:
        raise BackingError(f"embedded postgres did not start: {exc}") from exc
    cleanup.callback(pg.stop)
    link = layout.log("postgres")
    link.unlink(missing_ok=True)
    link.symlink_to(pg.log_path)
    return pg


async def start_embedded_broker(cleanup: AsyncExitStack, layout: DevLayout) -> BrokerProcess:
    from rastro_cli.devstack.broker import start_broker

    port = DEV_BROKER_PORT if port_is_free(DEV_BROKER_PORT) else None
    try:
        broker = await _in_thread(
            cleanup, lambda: start_broker(port, layout.log("tansu"), pid_file=layout.pid_file("tansu"))
        )
    except Exception as exc:
        raise BackingError(f"tansu did not start: {exc}") from exc
    cleanup.callback(broker.stop)
    return broker


async def _in_thread(cleanup: AsyncExitStack, start: Callable[[], _S]) -> _S:
    future = asyncio.get_running_loop().run_in_executor(None, start)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        try:
            started = await future
        except Exception:
            raise asyncio.CancelledError from None
        cleanup.callback(started.stop)
        raise
