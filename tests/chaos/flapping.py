"""A webhook receiver that flaps: healthy, then a burst of one kind of failure, then healthy again.

It is a small HTTP/1.1 server on asyncio streams, not an ASGI app, because two of its failures live
below HTTP: *refused* closes the listening socket (and drops open connections, as a crashed process
would), and *lost* reads and accepts a delivery, then closes the connection without answering — the
sender cannot know it landed and sends it again, under the same ``webhook-id``.

Phases alternate between ``ok`` and the next failure of ``faults`` every ``phase_s`` seconds:

======== ===================================================================================
ok       verify the Standard Webhooks signature, record the delivery, 204
500      500 Internal Server Error
503      503 Service Unavailable with ``Retry-After: 1``
timeout  read the request, never answer (the sender's own timeout ends the attempt)
lost     verify and record the delivery, then drop the connection without an answer
refused  no listener: connection refused
======== ===================================================================================

``calm()`` ends the flapping: ok from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rastro_kit.testing import free_port

__all__ = ["FAULTS", "FlappingReceiver"]

FAULTS = ("500", "503", "timeout", "lost", "refused")
_REASONS = {204: "No Content", 400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class FlappingReceiver:
    secrets: list[str] = field(default_factory=list)
    phase_s: float = 0.3
    faults: tuple[str, ...] = FAULTS
    port: int = field(default_factory=free_port)
    accepted: Counter[str] = field(default_factory=Counter)  # webhook-id -> times recorded
    raw: list[tuple[str, bytes]] = field(default_factory=list)  # (webhook-id, body) of every recording
    answered: Counter[str] = field(default_factory=Counter)  # requests met, by the phase's mode
    rejected: int = 0
    mode: str = "ok"
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    _flapping: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        await self._listen()
        self._flapping = asyncio.create_task(self._flap())

    async def calm(self) -> None:
        if self._flapping is not None:
            self._flapping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flapping
            self._flapping = None
        self.mode = "ok"
        if self._server is None:
            await self._listen()

    async def close(self) -> None:
        await self.calm()
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._handlers):  # the hung ones too
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _flap(self) -> None:
        for fault in itertools.cycle(self.faults):
            for mode in ("ok", fault):
                if mode == "refused":
                    self._unlisten()
                elif self._server is None:
                    await self._listen()
                self.mode = mode
                await asyncio.sleep(self.phase_s)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", self.port, reuse_address=True
        )

    def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):  # a crashed receiver drops what it held
            writer.transport.abort()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                if not await self._answer(writer, *request):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return  # close() ends what is left; a handler that re-raised would be logged by asyncio
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, headers: dict[str, str], body: bytes) -> bool:
        """Answer one request as the current phase says; False: the connection is to be dropped."""
        mode = self.mode
        self.answered[mode] += 1
        if mode == "timeout":
            self._writers.discard(writer)  # hung, not dropped: the sender's own timeout has to end it
            await asyncio.sleep(60)
            return False
        if mode in ("500", "503"):
            extra = {"Retry-After": "1"} if mode == "503" else {}
            await _respond(writer, int(mode), extra)
            return True
        if not self._verified(body, headers):
            self.rejected += 1
            await _respond(writer, 400)
            return True
        msg_id = headers["webhook-id"]
        self.accepted[msg_id] += 1
        self.raw.append((msg_id, body))
        if mode == "lost":
            writer.transport.abort()
            return False
        await _respond(writer, 204)
        return True

    def _verified(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    def bodies(self) -> dict[str, dict[str, Any]]:
        return {msg_id: json.loads(body) for msg_id, body in self.raw}


async def _read_request(reader: asyncio.StreamReader) -> tuple[dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed a kept-alive connection
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return headers, body


async def _respond(writer: asyncio.StreamWriter, status: int, extra: dict[str, str] | None = None) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}", "Content-Length: 0"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
