"""The Correios REST client: the only Correios module that does HTTP.

Authentication (Correios API "CWS"): a static ``token`` in the credentials, or ``username`` +
``access_code`` (the "código de acesso" of the Meu Correios account), optionally with a
``posting_card`` ("cartão de postagem"), exchanged for a bearer token at
``POST /token/v1/autentica[/cartaopostagem]`` and cached until shortly before its ``expiraEm``.
Tracking: ``GET /srorastro/v1/objetos?codigosObjetos=A&codigosObjetos=B&resultado=T`` (all events).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from rastro_ingest.adapters.carriers.models import CarrierRejected, CarrierThrottled, CarrierUnavailable

__all__ = ["CorreiosClient"]

_TOKEN_MARGIN_S = 60.0


class CorreiosClient:
    carrier = "correios"

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, Any],
        timeout_s: float = 10.0,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._credentials = dict(credentials)
        self._pace = pace
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, trust_env=False)
        self._token: str | None = self._credentials.get("token")
        self._token_expires = float("inf") if self._token else 0.0

    async def track(self, numbers: Sequence[str]) -> Any:
        headers = {"Authorization": f"Bearer {await self._bearer()}", "Accept": "application/json"}
        params = [("codigosObjetos", n) for n in numbers] + [("resultado", "T")]
        response = await self._send("GET", "/srorastro/v1/objetos", params=params, headers=headers)
        if response.status_code == 401 and "token" not in self._credentials:
            self._token_expires = 0.0  # an expired token: fetch a new one on the retry
        _raise_for(response)
        return response.json()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _bearer(self) -> str:
        if self._token is not None and time.monotonic() < self._token_expires:
            return self._token
        user, code = self._credentials.get("username"), self._credentials.get("access_code")
        if not user or not code:
            raise CarrierRejected("correios credentials need `token`, or `username` and `access_code`")
        card = self._credentials.get("posting_card")
        path = "/token/v1/autentica/cartaopostagem" if card else "/token/v1/autentica"
        response = await self._send(
            "POST", path, auth=(str(user), str(code)), json={"numero": str(card)} if card else None
        )
        _raise_for(response)
        body = response.json()
        self._token = str(body["token"])
        self._token_expires = time.monotonic() + _lifetime_s(body.get("expiraEm"))
        return self._token

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._pace is not None:
            await self._pace()  # the carrier's rate limit covers every request, token exchanges too
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # timeouts, refused connections, broken responses
            raise CarrierUnavailable(f"correios {path}: {type(exc).__name__}") from exc


def _raise_for(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    where = f"correios {response.request.url.path}: HTTP {status}"
    if status == 429:
        raise CarrierThrottled(where, _retry_after(response.headers.get("retry-after")))
    if status >= 500 or status == 408:
        raise CarrierUnavailable(where)
    raise CarrierRejected(where)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _lifetime_s(expires: Any) -> float:
    """Seconds the token stays usable; ``expiraEm`` is local time without an offset, like every SRO time."""
    try:
        moment = datetime.fromisoformat(str(expires))
    except ValueError:
        return 300.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone(timedelta(hours=-3)))  # Brasília, like every SRO time
    return max(0.0, (moment - datetime.now(UTC)).total_seconds() - _TOKEN_MARGIN_S)
