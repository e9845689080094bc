"""The one place that POSTs webhooks: sign, check the endpoint, send, report what happened.

``send`` never raises for anything the endpoint or the network does; it returns an ``AttemptResult``
whose ``outcome`` (``domain.delivery.classify``) tells the caller what to do next. Redirects are not
followed: a 3xx is a failed attempt (``failed_permanently``) whose ``error_detail`` names the target.

``timeout_s`` bounds the whole attempt (connect, send, response head and the excerpt), not only each
socket operation, so a server that trickles bytes cannot hold a worker.

Unless ``allow_private``, the URL is validated again right before sending, with the host resolved for
real, so an endpoint whose name was re-pointed at a private address since it was registered is refused.
httpx resolves the name once more when it connects; pinning the checked address inside the transport
would close that last window.
"""

from __future__ import annotations

import asyncio
import codecs
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

import httpx

from rastro_notification.domain.delivery import AttemptError, AttemptResult
from rastro_notification.domain.endpoint_policy import EndpointRejected, validate_endpoint_url
from rastro_notification.domain.retry_schedule import parse_retry_after
from rastro_notification.domain.signing import headers_for

__all__ = ["EXCERPT_BYTES", "AttemptResult", "Resolver", "WebhookSender", "resolve_host"]

EXCERPT_BYTES = 1024

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, through the system resolver, without blocking the loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class WebhookSender:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        timeout_s: float = 15.0,
        allow_private: bool,
        require_https: bool,
        resolve: Resolver = resolve_host,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._require_https = require_https
        self._resolve = resolve

    async def send(
        self,
        url: str,
        msg_id: str,
        timestamp: int,
        body: bytes,
        secrets: Sequence[str],
        extra_headers: Mapping[str, str] | None = None,
    ) -> AttemptResult:
        """POST ``body`` to ``url``, signed with every secret; one attempt, no retries here."""
        # One deadline for the whole attempt, name resolution included: a caller that leases the message
        # for longer than ``timeout_s`` can rely on the attempt being over by then.
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        refusal = await self._check_endpoint(url, deadline)
        if refusal is not None:
            return refusal
        headers = httpx.Headers({"content-type": "application/json"})
        headers.update(extra_headers or {})
        # Identity encoding keeps the excerpt readable and a compressed reply from inflating in memory.
        headers.update({"accept-encoding": "identity", **headers_for(msg_id, timestamp, body, secrets)})
        request = self._client.build_request(
            "POST", url, content=body, headers=headers, timeout=self._timeout_s
        )
        return await self._attempt(request, deadline)

    async def _check_endpoint(self, url: str, deadline: float) -> AttemptResult | None:
        def check(addresses: list[str] | None) -> None:
            validate_endpoint_url(
                url,
                allow_private=self._allow_private,
                require_https=self._require_https,
                resolve=None if addresses is None else (lambda _host: addresses),
            )

        try:
            check(None)
            if self._allow_private:
                return None
            target = httpx.URL(url)
            # Resolve the host httpx itself will connect to, not our own parse of it.
            host = target.raw_host.decode("ascii")
            async with asyncio.timeout_at(deadline):
                addresses = await self._resolve(
                    host, target.port or (443 if target.scheme == "https" else 80)
                )
            check(addresses)
        except EndpointRejected as exc:
            return _failure(AttemptError.ENDPOINT_REJECTED, exc.reason, 0.0)
        except httpx.InvalidURL as exc:
            return _failure(AttemptError.ENDPOINT_REJECTED, str(exc), 0.0)
        except TimeoutError:  # before OSError, of which it is a subclass
            return _failure(AttemptError.DNS, f"name resolution took more than {self._timeout_s:g} s", 0.0)
        except OSError as exc:  # socket.gaierror and friends
            return _failure(AttemptError.DNS, f"{type(exc).__name__}: {exc}", 0.0)
        return None

    async def _attempt(self, request: httpx.Request, deadline: float) -> AttemptResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True, follow_redirects=False)
        except (TimeoutError, httpx.TimeoutException) as exc:
            return _failure(AttemptError.TIMEOUT, _describe_timeout(exc, self._timeout_s), _since(started))
        except httpx.TransportError as exc:
            return _failure(_transport_error(exc), f"{type(exc).__name__}: {exc}", _since(started))
        try:
            excerpt = await _read_excerpt(response, deadline)
        finally:
            await response.aclose()
        latency_ms = _since(started)
        retry_after = response.headers.get("retry-after")
        return AttemptResult(
            status_code=response.status_code,
            latency_ms=latency_ms,
            response_excerpt=excerpt,
            error_detail=_redirect_detail(response),
            retry_after_s=None if retry_after is None else parse_retry_after(retry_after, datetime.now(UTC)),
        )


async def _read_excerpt(response: httpx.Response, deadline: float) -> str:
    """At most ``EXCERPT_BYTES`` of the body, decoded lossily; whatever arrived if time runs out."""
    raw = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in response.aiter_bytes():
                raw.extend(chunk)
                if len(raw) >= EXCERPT_BYTES:
                    break
    except (TimeoutError, httpx.HTTPError):
        pass  # the status line already arrived and decides the outcome; a partial excerpt will do
    # An incremental decoder holds back a multi-byte character cut at the limit instead of mangling it.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(bytes(raw[:EXCERPT_BYTES]), final=False)


def _failure(error: AttemptError, detail: str, latency_ms: float) -> AttemptResult:
    return AttemptResult(status_code=None, latency_ms=latency_ms, error=error, error_detail=detail)


def _transport_error(exc: httpx.TransportError) -> AttemptError:
    if isinstance(exc, httpx.ProtocolError):
        return AttemptError.PROTOCOL
    if isinstance(exc, httpx.UnsupportedProtocol):
        return AttemptError.ENDPOINT_REJECTED
    return AttemptError.CONNECTION


def _describe_timeout(exc: Exception, timeout_s: float) -> str:
    name = type(exc).__name__ if isinstance(exc, httpx.TimeoutException) else "deadline"
    return f"no complete response within {timeout_s:g} s ({name})"


def _redirect_detail(response: httpx.Response) -> str | None:
    if not response.is_redirect:
        return None
    return f"redirect to {response.headers.get('location', '?')} not followed; register the final URL"


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
