"""The dev gateway against two tiny real upstreams, over real HTTP on free ports."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rastro_cli.devstack.gateway import ProxyRoute, build_gateway, routes_for

BIG = 2 * 1024 * 1024


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _upstream(name: str) -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "upstream": name,
                "method": request.method,
                "raw_path": request.scope["raw_path"].decode(),
                "query": request.scope["query_string"].decode(),
                "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw],
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
        )

    async def created(request: Request) -> Response:
        response = Response(gzip.compress(b'{"id": "s1"}'), status_code=201, media_type="application/json")
        response.headers["location"] = "/v1/subscriptions/s1"
        response.headers["content-encoding"] = "gzip"
        response.raw_headers.append((b"set-cookie", b"a=1; Path=/"))
        response.raw_headers.append((b"set-cookie", b"b=2; Path=/"))
        return response

    async def big(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(BIG // 65536):
                yield bytes([i % 256]) * 65536

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    async def empty(request: Request) -> Response:
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/v1/subscriptions/created", created, methods=["POST"]),
            Route("/v1/eta/big", big),
            Route("/v1/dead-letters/gone", empty, methods=["DELETE"]),
            Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]
    )


async def _serve(app: Starlette, sock: socket.socket) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task


@pytest.fixture(scope="module")
async def gateway_url() -> AsyncIterator[str]:
    sockets = {name: _bound_socket() for name in ("a", "b", "gateway")}
    dead = _bound_socket()  # bound, never listening: connections to it are refused
    url = {name: f"http://127.0.0.1:{s.getsockname()[1]}" for name, s in sockets.items()}
    upstreams = {
        "eta": url["a"],
        "notification": url["a"],
        "normalization": url["b"],
        "dlq-replay": url["b"],
        "ingest": f"http://127.0.0.1:{dead.getsockname()[1]}",
    }
    running = [
        await _serve(_upstream("a"), sockets["a"]),
        await _serve(_upstream("b"), sockets["b"]),
        await _serve(build_gateway(routes_for(upstreams), timeout=5.0), sockets["gateway"]),
    ]
    yield url["gateway"]
    for server, _ in reversed(running):
        server.should_exit = True
    await asyncio.gather(*(task for _, task in running))
    for s in [*sockets.values(), dead]:
        s.close()


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False, timeout=10.0) as c:
        yield c


@pytest.mark.unit
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/shipments/AA123456785BR/eta", "eta"),
        ("/v1/shipments/AA123456785BR", "normalization"),
        ("/v1/shipments", "normalization"),
        ("/v1/shipments/eta", "normalization"),
        ("/v1/eta/lanes", "eta"),
        ("/v1/tenants/demo/keys", "ingest"),
        ("/v1/dead-letters/stats", "dlq-replay"),
        ("/v1/eventsx", None),
        ("/v2/events", None),
    ],
)
def test_route_table_picks_the_most_specific_prefix(path: str, expected: str | None) -> None:
    routes = routes_for(
        {s: f"http://{s}" for s in ("ingest", "normalization", "eta", "notification", "dlq-replay")}
    )
    matched = next((r.service for r in routes if r.matches(path)), None)
    assert matched == expected


@pytest.mark.unit
def test_a_pattern_segment_matches_exactly_one_segment() -> None:
    route = ProxyRoute("/v1/shipments/{n}/eta", "eta", "http://eta")
    assert route.matches("/v1/shipments/X/eta")
    assert not route.matches("/v1/shipments/X/Y/eta")
    assert not route.matches("/v1/shipments/X/etas")


@pytest.mark.integration
async def test_routes_to_the_owning_service(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/shipments/AB1/eta")).json()["upstream"] == "a"
    assert (await client.get("/v1/shipments/AB1")).json()["upstream"] == "b"
    assert (await client.get("/v1/subscriptions")).json()["upstream"] == "a"


@pytest.mark.integration
async def test_passes_method_path_query_headers_and_streamed_body(client: httpx.AsyncClient) -> None:
    payload = b"x" * 300_000

    async def body() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 50_000):
            yield payload[i : i + 50_000]

    response = await client.patch(
        "/v1/mappings/a%2Fb/%C3%A9?x=1&x=2&q=S%C3%A3o+Paulo",
        content=body(),
        headers={
            "Authorization": "Bearer rk_test",
            "X-Custom": "kept",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "secret",
            "Connection": "keep-alive, x-private",
            "X-Private": "no",
        },
    )
    echo = response.json()
    headers = dict(echo["headers"])
    assert response.status_code == 200
    assert (echo["upstream"], echo["method"]) == ("b", "PATCH")
    assert echo["raw_path"] == "/v1/mappings/a%2Fb/%C3%A9"
    assert echo["query"] == "x=1&x=2&q=S%C3%A3o+Paulo"
    assert echo["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert headers["authorization"] == "Bearer rk_test"
    assert headers["x-custom"] == "kept"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    for hop in ("keep-alive", "proxy-authorization", "x-private"):
        assert hop not in headers


@pytest.mark.integration
async def test_passes_status_and_headers_back_untouched(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/subscriptions/created", json={"url": "http://x"})
    assert response.status_code == 201
    assert response.headers["location"] == "/v1/subscriptions/s1"
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == {"id": "s1"}
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
    # The shared upstream client must not replay one caller's cookies to the next caller.
    async with httpx.AsyncClient(base_url=str(client.base_url), trust_env=False) as fresh:
        echo = (await fresh.get("/v1/subscriptions")).json()
    assert "cookie" not in dict(echo["headers"])
    assert (await client.delete("/v1/dead-letters/gone")).status_code == 204


@pytest.mark.integration
async def test_streams_a_large_response(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/v1/eta/big") as response:
        data = b"".join([chunk async for chunk in response.aiter_bytes()])
    assert response.status_code == 200
    assert len(data) == BIG
    assert data[:65536] == b"\x00" * 65536 and data[-1:] == bytes([(BIG // 65536 - 1) % 256])


@pytest.mark.integration
async def test_unmatched_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no Rastro service serves /v1/nothing-here",
    }


@pytest.mark.integration
async def test_a_service_that_is_down_is_a_503_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/events", json={"type": "tracking.event"})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["title"]) == (503, "Service Unavailable")
    assert "ingest" in problem["detail"]


@pytest.mark.integration
async def test_healthz_answers_itself(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
