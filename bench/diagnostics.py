"""Where a scenario's time goes: ``--sql-timing`` and ``--profile``.

``--sql-timing`` counts the statements a scenario sends to Postgres and how long each kind takes.

Wraps asyncpg's ``Connection`` query methods in this process only (the services are in-process), so
it sees every statement of the consumer runner, the handlers and the outbox relay, including the
BEGIN / SAVEPOINT / RELEASE / COMMIT that ``conn.transaction()`` sends. Time is wall time from the
call to its answer: the round trip plus Postgres' work plus any wait for the event loop.
"""

from __future__ import annotations

import contextlib
import cProfile
import pstats
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg

__all__ = ["profiled", "statement_timing"]

_METHODS = ("execute", "executemany", "fetch", "fetchrow", "fetchval")
_SPACE = re.compile(r"\s+")


def _label(query: str) -> str:
    text = _SPACE.sub(" ", query.strip())
    words = text.split(" ")
    head = " ".join(words[:2]).upper()
    for marker in (" FROM ", " INTO ", "UPDATE "):
        i = text.upper().find(marker)
        if i >= 0:
            table = text[i + len(marker) :].split(" ")[0].split("(")[0]
            return f"{head} … {table}" if marker != "UPDATE " else f"UPDATE {table}"
    return head if not text.upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")) else words[0].upper()


@contextlib.contextmanager
def statement_timing(enabled: bool, events: Callable[[], int]) -> Iterator[None]:
    """Count and time statements while the block runs; print a table per event of ``events()``."""
    if not enabled:
        yield
        return
    stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    originals = {m: getattr(asyncpg.connection.Connection, m) for m in _METHODS}

    def wrap(original: Any) -> Any:
        async def timed(self: Any, query: str, *args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(self, query, *args, **kw)
            finally:
                entry = stats[_label(query)]
                entry[0] += 1
                entry[1] += time.perf_counter() - started

        return timed

    for name, original in originals.items():
        setattr(asyncpg.connection.Connection, name, wrap(original))
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(asyncpg.connection.Connection, name, original)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        n = max(events(), 1)
        print(f"    process CPU {cpu:.1f} s of {wall:.1f} s wall ({cpu / wall:.0%} of one core)")
        print(f"    {'statement':<48} {'count':>8} {'per event':>9} {'total s':>8} {'avg µs':>8}")
        for label, (count, seconds) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
            avg_us = seconds / count * 1e6
            print(f"    {label[:48]:<48} {count:>8} {count / n:>9.2f} {seconds:>8.2f} {avg_us:>8.0f}")
        total = sum(c for c, _ in stats.values())
        print(f"    {'all':<48} {total:>8} {total / n:>9.2f} {sum(s for _, s in stats.values()):>8.2f}")


@contextlib.contextmanager
def profiled(directory: Path | None, name: str) -> Iterator[None]:
    """cProfile the block (services included: they run in this process) into ``<directory>/<name>.prof``.

    Coroutines count one call per resume, and cumulative times leave out the time they are suspended.
    """
    if directory is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        directory.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(directory / f"{name}.prof")
        print(f"\n--- {name}: top functions by own time ---")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
