"""Wait until every child answers 200 on its readiness URL, or say which one did not and why."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from rastro_cli.devstack.processes import ChildProcess

__all__ = ["NotReady", "Probe", "wait_until_ready"]


@dataclass(frozen=True)
class Probe:
    child: ChildProcess
    url: str


class NotReady(RuntimeError):
    def __init__(self, probe: Probe, reason: str) -> None:
        super().__init__(f"{probe.child.name}: {reason}")
        self.probe = probe
        self.reason = reason


async def wait_until_ready(
    probes: Sequence[Probe],
    deadline: float,
    on_ready: Callable[[Probe, float], None] = lambda probe, seconds: None,
) -> None:
    """Raise ``NotReady`` for the first child that exits, or that is not ready within ``deadline``."""
    started = time.monotonic()
    async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
        try:
            async with asyncio.TaskGroup() as group:
                for probe in probes:
                    group.create_task(_wait_one(client, probe, started, deadline, on_ready))
        except* NotReady as failures:
            raise failures.exceptions[0] from None


async def _wait_one(
    client: httpx.AsyncClient,
    probe: Probe,
    started: float,
    deadline: float,
    on_ready: Callable[[Probe, float], None],
) -> None:
    last = "no answer yet"
    while True:
        if not probe.child.running:
            raise NotReady(probe, f"exited with code {probe.child.returncode} before it was ready")
        try:
            response = await client.get(probe.url)
            if response.status_code == 200:
                on_ready(probe, time.monotonic() - started)
                return
            last = f"{probe.url} answered {response.status_code}: {response.text[:200]}"
        except httpx.TransportError as exc:
            last = f"{probe.url}: {type(exc).__name__}"
        if time.monotonic() - started > deadline:
            raise NotReady(probe, f"not ready after {deadline:.0f} s ({last})")
        await asyncio.sleep(0.25)
