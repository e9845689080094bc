"""Calls from the console to the services' own HTTP APIs, with the signed-in user's key.

Scopes and tenants are the services' business: a 403 or a 404 comes back as an ``Answer`` for the
page to show, never as an exception. A service that is down is an answer too (503), so one dead
service greys out one panel instead of failing the whole page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["Answer", "ServiceApi", "segment"]


def segment(value: str) -> str:
    """One path segment, percent-encoded (a tracking number or an id typed by a user)."""
    return quote(value, safe="")


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    """The JSON body, or None."""
    detail: str | None = None
    """What went wrong, in words: the problem+json ``detail``, or why the service did not answer."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def problem_type(self) -> str | None:
        kind = self.body.get("type") if isinstance(self.body, dict) else None
        return str(kind).rsplit("/", 1)[-1] if kind else None

    def items(self) -> list[dict[str, Any]]:
        """The ``items`` of a list answer; empty when the call failed."""
        if not self.ok or not isinstance(self.body, dict):
            return []
        return [i for i in self.body.get("items") or [] if isinstance(i, dict)]


class ServiceApi:
    def __init__(self, client: httpx.AsyncClient, upstreams: Mapping[str, str], timeout: float) -> None:
        self._client, self._upstreams, self._timeout = client, upstreams, timeout

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        key: str | None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Answer:
        headers = {"Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        query = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
        try:
            response = await self._client.request(
                method,
                self._upstreams[service] + path,
                params=query,
                json=json,
                headers=headers,
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            return Answer(504, None, f"{service} did not answer in time")
        except httpx.TransportError:
            return Answer(503, None, f"{service} is not reachable")
        return _answer(response)

    async def text(self, service: str, path: str) -> tuple[int, str] | None:
        """An unauthenticated ops endpoint (``/metrics``, ``/readyz``): status and text; None if down."""
        try:
            response = await self._client.get(self._upstreams[service] + path, timeout=self._timeout)
        except httpx.TransportError:
            return None
        return response.status_code, response.text


def _answer(response: httpx.Response) -> Answer:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if 200 <= response.status_code < 300:
        return Answer(response.status_code, body)
    detail = body.get("detail") or body.get("title") if isinstance(body, dict) else None
    if detail is None:
        detail = f"HTTP {response.status_code}: {response.text[:200]}".strip()
    return Answer(response.status_code, body, str(detail))
