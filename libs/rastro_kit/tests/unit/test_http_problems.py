"""Every error the kit's plumbing answers is problem+json: the database refusing a value (found by
the API fuzzer: a 64-bit overflow, NUL in text, a time without UTC equivalent were 500s), a path no
route matches, a method a route lacks, invalid parameters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asyncpg.exceptions import CharacterNotInRepertoireError, DataError
from fastapi import FastAPI

from rastro_kit.http import PROBLEM_JSON, install_http_plumbing

pytestmark = pytest.mark.unit


def _app() -> FastAPI:
    app = FastAPI()
    install_http_plumbing(app, "test")

    @app.get("/overflow")
    async def overflow() -> None:
        raise DataError("invalid input for query argument $1: 6723060916966710071 (value out of int64 range)")

    @app.get("/nul")
    async def nul(q: str) -> None:
        raise CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')

    @app.get("/items")
    async def items(limit: int = 10) -> dict[str, int]:
        return {"limit": limit}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/overflow", 422),
        ("GET", "/nul?q=a%00b", 422),
        ("GET", "/items?limit=x", 422),
        ("GET", "/nowhere", 404),
        ("DELETE", "/items", 405),
    ],
)
async def test_the_answer_is_a_problem(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    r = await client.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"].split(";")[0] == PROBLEM_JSON
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://rastro.dev/")
