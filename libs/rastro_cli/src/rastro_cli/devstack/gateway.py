"""The dev gateway: one base URL (``http://127.0.0.1:8000``) in front of the five services.

Routes by path prefix (DESIGN §11), most specific first, and streams request and response bodies
through unchanged: method, path (as sent, still percent-encoded), query, headers except hop-by-hop ones,
and status. An unmatched path is a 404 and an unreachable service a 503, both ``application/problem+json``.
It also serves the web console at ``/console`` (``/`` redirects there; docs/console.md) and, for the
demo tenant of ``make run``, a webhook sink at ``/demo/webhooks``.

Run it with ``python -m rastro_cli.devstack.gateway`` (``RASTRO_GATEWAY_HOST``, ``RASTRO_GATEWAY_PORT``,
and ``RASTRO_GATEWAY_UPSTREAM_<SERVICE>`` to point a service elsewhere).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from rastro_cli.console import build_console
from rastro_cli.devstack.catalog import GATEWAY_PORT, HOST, SERVICES, service_url

__all__ = [
    "DEMO_WEBHOOKS_PATH",
    "ROUTE_TABLE",
    "ProxyRoute",
    "build_gateway",
    "main",
    "problem",
    "routes_for",
]

ROUTE_TABLE: tuple[tuple[str, str], ...] = (
    ("/v1/shipments/{tracking_number}/eta", "eta"),
    ("/v1/eta", "eta"),
    ("/v1/shipments", "normalization"),
    ("/v1/mappings", "normalization"),
    ("/v1/kpis", "normalization"),
    ("/v1/routes", "normalization"),
    ("/v1/geofence", "normalization"),
    ("/v1/events", "ingest"),
    ("/v1/telemetry", "ingest"),
    ("/v1/imports", "ingest"),
    ("/v1/carriers", "ingest"),
    ("/v1/tenants", "ingest"),
    ("/v1/keys", "ingest"),
    ("/v1/subscriptions", "notification"),
    ("/v1/notifications", "notification"),
    ("/v1/dead-letters", "dlq-replay"),
    # Each service serves its own audit log (docs/audit.md); `rastro audit list` merges them.
    ("/v1/audit/ingest", "ingest"),
    ("/v1/audit/normalization", "normalization"),
    ("/v1/audit/eta", "eta"),
    ("/v1/audit/notification", "notification"),
    ("/v1/audit/dlq-replay", "dlq-replay"),
    ("/v1/privacy/notification", "notification"),
    ("/v1/privacy/dead-letters", "dlq-replay"),
    # Each service serves the tenant's retention of what it keeps (docs/privacy.md); `rastro retention`.
    ("/v1/retention/ingest", "ingest"),
    ("/v1/retention/normalization", "normalization"),
    ("/v1/retention/eta", "eta"),
    ("/v1/retention/notification", "notification"),
    ("/v1/retention/dead-letters", "dlq-replay"),
)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
DEMO_WEBHOOKS_PATH = "/demo/webhooks"
# RFC 9110 §7.6.1 plus the de-facto ones: they describe one connection, not the end-to-end message.
# ``expect`` too: our own server has already answered any 100-continue.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)


@dataclass(frozen=True)
class ProxyRoute:
    pattern: str
    """A path prefix; ``{name}`` stands for one path segment."""
    service: str
    upstream: str
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{[^/}]+\}", self.pattern)
        body = "[^/]+".join(re.escape(p) for p in parts)
        object.__setattr__(self, "regex", re.compile(f"^{body}(?:/.*)?$"))

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None


def routes_for(upstreams: Mapping[str, str]) -> list[ProxyRoute]:
    """The route table bound to base URLs, keyed by service name (``dlq-replay``)."""
    return [ProxyRoute(pattern, service, upstreams[service].rstrip("/")) for pattern, service in ROUTE_TABLE]


def problem(status: int, detail: str) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def build_gateway(routes: Sequence[ProxyRoute], *, timeout: float = 60.0) -> Starlette:
    routes = list(routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # trust_env=False: an HTTP(S)_PROXY in the developer's shell must not capture loopback traffic.
        # The jar keeps nothing: requests are built without the client's cookies, and the Set-Cookie
        # answers of every caller must not pile up in the one shared client.
        jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5.0),
            trust_env=False,
            cookies=jar,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        ) as client:
            yield {"client": client}

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def proxy(request: Request) -> Response:
        path = request.url.path
        route = next((r for r in routes if r.matches(path)), None)
        if route is None:
            return problem(404, f"no Rastro service serves {path}")
        client: httpx.AsyncClient = request.state.client
        upstream_request = httpx.Request(
            request.method,
            _upstream_url(route, request),
            headers=_request_headers(request),
            content=request.stream() if _has_body(request) else None,
        )
        try:
            upstream = await client.send(upstream_request, stream=True)
        except httpx.ConnectError:
            return problem(503, f"{route.service} is not reachable at {route.upstream}; is it running?")
        except httpx.TimeoutException:
            return problem(504, f"{route.service} did not answer in time")
        except httpx.TransportError as exc:
            return problem(502, f"{route.service} failed: {type(exc).__name__}")
        response = StreamingResponse(
            _relay(upstream), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
        )
        response.raw_headers = _strip_hop_by_hop(upstream.headers.raw)
        return response

    async def to_console(request: Request) -> Response:
        return RedirectResponse("/console/", status_code=307)

    async def demo_webhooks(request: Request) -> Response:
        """The demo tenant's webhook subscriber in ``make run`` (demo_setup.py): takes and drops."""
        await request.body()
        return Response(status_code=204)

    # The console (docs/console.md) calls the same upstreams with the signed-in user's key, through the
    # lifespan's shared client (state "client").
    console = build_console({r.service: r.upstream for r in routes})
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/", to_console),
            Mount("/console", console),
            Route(DEMO_WEBHOOKS_PATH, demo_webhooks, methods=["POST"]),
            Route("/{path:path}", proxy, methods=METHODS),
        ],
        lifespan=lifespan,
    )


def _upstream_url(route: ProxyRoute, request: Request) -> str:
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(request.url.path)
    query = request.scope.get("query_string", b"").decode("latin-1")
    return route.upstream + path + (f"?{query}" if query else "")


def _has_body(request: Request) -> bool:
    return "content-length" in request.headers or "transfer-encoding" in request.headers


def _request_headers(request: Request) -> list[tuple[bytes, bytes]]:
    headers = [(k, v) for k, v in _strip_hop_by_hop(request.headers.raw) if k.lower() != b"host"]
    if request.client is not None:
        forwarded_for = request.headers.get("x-forwarded-for")
        client_ip = request.client.host
        value = f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip
        headers = [(k, v) for k, v in headers if k.lower() != b"x-forwarded-for"]
        headers.append((b"x-forwarded-for", value.encode("latin-1")))
    headers.append((b"x-forwarded-proto", request.url.scheme.encode("latin-1")))
    if "host" in request.headers:
        headers.append((b"x-forwarded-host", request.headers["host"].encode("latin-1")))
    return headers


def _strip_hop_by_hop(raw: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    named_in_connection = {
        token.strip().lower()
        for k, v in raw
        if k.lower() == b"connection"
        for token in v.decode("latin-1").split(",")
    }
    drop = HOP_BY_HOP | named_in_connection
    return [(k.lower(), v) for k, v in raw if k.decode("latin-1").lower() not in drop]


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    # Raw bytes: a gzip body stays gzip, and Content-Encoding/Length still describe it.
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    finally:
        await upstream.aclose()


def main() -> None:
    import uvicorn

    upstreams = {
        s.name: os.environ.get(f"RASTRO_GATEWAY_UPSTREAM_{s.name.upper().replace('-', '_')}", service_url(s))
        for s in SERVICES
    }
    uvicorn.run(
        build_gateway(routes_for(upstreams)),
        host=os.environ.get("RASTRO_GATEWAY_HOST", HOST),
        port=int(os.environ.get("RASTRO_GATEWAY_PORT", str(GATEWAY_PORT))),
        log_level=os.environ.get("RASTRO_LOG_LEVEL", "info").lower(),
        # The upstream's own Server and Date headers pass through; do not add a second pair.
        server_header=False,
        date_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
