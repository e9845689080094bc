"""The one place that POSTs webhooks: sign, check the endpoint, send, report what happened.

``send`` never raises for anything the endpoint or the network does; it returns an ``AttemptResult``
whose ``outcome`` (``domain.delivery.classify``) tells the caller what to do next. Redirects are not
followed: a 3xx is a failed attempt (``failed_permanently``) whose ``error_detail`` names the target.

``timeout_s`` bounds the whole attempt (connect, send, response head and the excerpt), not only each
socket operation, so a server that trickles bytes cannot hold a worker.

Unless ``allow_private``, the URL is validated again right before sending, with the host resolved for
real, so an endpoint whose name was re-pointed at a private address since it was registered is refused;
the connection then goes to the very addresses that were checked (``PinnedResolver``), so a DNS answer
that changes between the check and the connect (DNS rebinding) cannot slip a private address in.

The HTTP client is aiohttp: on this path (many small POSTs to many endpoints) it costs ~100 µs of CPU
per request where httpx cost ~600 µs (a connection-pool scan per request and its anyio layers); the
dispatcher's throughput is bounded by that CPU (bench/dispatcher_bench.py, docs/notification.md).
"""

from __future__ import annotations

import asyncio
import codecs
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDict

from rastro_notification.domain.delivery import AttemptError, AttemptResult
from rastro_notification.domain.endpoint_policy import EndpointRejected, validate_endpoint_url
from rastro_notification.domain.retry_schedule import parse_retry_after
from rastro_notification.domain.signing import headers_for

__all__ = [
    "EXCERPT_BYTES",
    "AttemptResult",
    "PinnedResolver",
    "Resolver",
    "WebhookSender",
    "new_webhook_session",
    "resolve_host",
]

EXCERPT_BYTES = 1024

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, through the system resolver, without blocking the loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# The addresses the SSRF check approved for the request being sent by this task: (host, addresses).
_PINNED: ContextVar[tuple[str, tuple[str, ...]] | None] = ContextVar("rastro_pinned_addresses", default=None)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class PinnedResolver(AbstractResolver):
    """The connector's resolver: the addresses the endpoint check approved, when there are some for
    this host; otherwise the system resolver (development mode, where private addresses are allowed)."""

    def __init__(self) -> None:
        self._system = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        pinned = _PINNED.get()
        if pinned is None or pinned[0] != host:
            return await self._system.resolve(host, port, family)
        found = []
        for address in pinned[1]:
            kind = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family in (socket.AF_UNSPEC, kind):
                found.append(
                    ResolveResult(
                        hostname=host,
                        host=address,
                        port=port,
                        family=kind,
                        proto=0,
                        flags=socket.AI_NUMERICHOST,
                    )
                )
        if not found:
            raise OSError(f"no checked address of {host} for address family {family!r}")
        return found

    async def close(self) -> None:
        await self._system.close()


def new_webhook_session(
    max_connections: int, *, user_agent: str, resolver: AbstractResolver | None = None
) -> aiohttp.ClientSession:
    """The session every delivery of a process shares (create it inside the running loop). No proxies
    from the environment, no redirects (per request), no cookie jar — a cookie one subscriber sets must
    never travel to another —, no decompression, and no DNS cache: each new connection resolves through
    ``resolver`` (default ``PinnedResolver``). Kept-alive connections are pooled per endpoint, up to
    ``max_connections`` in all."""
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=0,
        use_dns_cache=False,
        resolver=resolver or PinnedResolver(),
        ssl=ssl.create_default_context(),
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=None),  # each attempt has its own deadline (``timeout_s``)
        headers={"user-agent": user_agent},
    )


class WebhookSender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float = 15.0,
        allow_private: bool,
        require_https: bool,
        resolve: Resolver = resolve_host,
    ) -> None:
        self._session = session
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
        checked = await self._check_endpoint(url, deadline)
        if isinstance(checked, AttemptResult):
            return checked
        headers: CIMultiDict[str] = CIMultiDict({"content-type": "application/json"})
        headers.update(extra_headers or {})
        # Identity encoding keeps the excerpt readable and a compressed reply from inflating in memory.
        headers.update({"accept-encoding": "identity", **headers_for(msg_id, timestamp, body, secrets)})
        pinned = _PINNED.set(checked)
        try:
            return await self._attempt(url, body, headers, deadline)
        finally:
            _PINNED.reset(pinned)

    async def _check_endpoint(
        self, url: str, deadline: float
    ) -> AttemptResult | tuple[str, tuple[str, ...]] | None:
        """A refusal, or the (host, addresses) the connection must use (None: no check, development)."""

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
            host = target.host  # as the HTTP client connects to it: lower-case, IDNA-decoded, no brackets
            async with asyncio.timeout_at(deadline):
                addresses = await self._resolve(
                    target.raw_host.decode("ascii"), target.port or (443 if target.scheme == "https" else 80)
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
        return host, tuple(addresses)

    async def _attempt(
        self, url: str, body: bytes, headers: CIMultiDict[str], deadline: float
    ) -> AttemptResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._session.post(url, data=body, headers=headers, allow_redirects=False)
        except TimeoutError:  # aiohttp's own timeouts are TimeoutErrors too
            return _failure(AttemptError.TIMEOUT, _describe_timeout(self._timeout_s), _since(started))
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            return _failure(AttemptError.ENDPOINT_REJECTED, f"{type(exc).__name__}: {exc}", _since(started))
        except aiohttp.ClientError as exc:
            return _failure(_transport_error(exc), f"{type(exc).__name__}: {exc}", _since(started))
        try:
            excerpt, complete = await _read_excerpt(response, deadline)
        finally:
            # A body read to its end returns the connection to the pool; one cut short closes it.
            response.release() if complete else response.close()
        latency_ms = _since(started)
        retry_after = response.headers.get("retry-after")
        return AttemptResult(
            status_code=response.status,
            latency_ms=latency_ms,
            response_excerpt=excerpt,
            error_detail=_redirect_detail(response),
            retry_after_s=None if retry_after is None else parse_retry_after(retry_after, datetime.now(UTC)),
        )


async def _read_excerpt(response: aiohttp.ClientResponse, deadline: float) -> tuple[str, bool]:
    """At most ``EXCERPT_BYTES`` of the body, decoded lossily (whatever arrived if time runs out), and
    whether the body ended within them."""
    raw = bytearray()
    complete = False
    try:
        async with asyncio.timeout_at(deadline):
            while len(raw) < EXCERPT_BYTES:
                chunk = await response.content.read(EXCERPT_BYTES - len(raw))
                if not chunk:
                    break
                raw.extend(chunk)
            complete = len(raw) < EXCERPT_BYTES or response.content.at_eof()  # never waits for more
    except (TimeoutError, aiohttp.ClientError):
        pass  # the status line already arrived and decides the outcome; a partial excerpt will do
    # An incremental decoder holds back a multi-byte character cut at the limit instead of mangling it.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(bytes(raw[:EXCERPT_BYTES]), final=False), complete


def _failure(error: AttemptError, detail: str, latency_ms: float) -> AttemptResult:
    return AttemptResult(status_code=None, latency_ms=latency_ms, error=error, error_detail=detail)


def _transport_error(exc: aiohttp.ClientError) -> AttemptError:
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return AttemptError.DNS
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, unreachable, TLS handshake or certificate
        return AttemptError.CONNECTION
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError
    ):
        return AttemptError.PROTOCOL  # closed mid-answer, or not HTTP/1.1 as it should be
    return AttemptError.CONNECTION


def _describe_timeout(timeout_s: float) -> str:
    return f"no complete response within {timeout_s:g} s"


def _redirect_detail(response: aiohttp.ClientResponse) -> str | None:
    if response.status not in _REDIRECTS or "location" not in response.headers:
        return None
    return f"redirect to {response.headers['location']} not followed; register the final URL"


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
