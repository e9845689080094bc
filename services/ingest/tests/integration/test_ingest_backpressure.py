"""Back-pressure at ingest's front door: per-key rate limits (429) and a database outage (503), over
real HTTP, with a real broker and a Postgres of this module's own that the test stops and restarts."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rastro_cli.devstack.postgres import EmbeddedPostgres, start_postgres
from rastro_ingest.app import build_app
from rastro_ingest.settings import IngestSettings
from rastro_kit.testing import serve_app, wait_until

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)
RATE, BURST = 2.0, 5
EVENT = {
    "type": "tracking.event",
    "carrier": "correios",
    "tracking_number": "BP123456785BR",
    "status_code": "PO-01",
    "occurred_at": "2026-11-23T14:05:11-03:00",
}


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, EmbeddedPostgres]]:
    data = tmp_path_factory.mktemp("pg-backpressure") / "data"
    server = start_postgres(data)
    try:
        yield data, server
    finally:
        start_postgres(data).stop()  # whatever state a failed test left it in


@pytest.fixture(scope="module")
async def client(
    own_postgres: tuple[Path, EmbeddedPostgres],
    kafka_bootstrap: str,
    kafka_idempotence: bool,
    topics: list[str],
) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=own_postgres[1].url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
        rate_limit_per_s=RATE,
        rate_limit_burst=BURST,
    )
    async with serve_app(build_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as c:
        yield c


async def new_key(client: httpx.AsyncClient) -> str:
    tenant = f"bp{secrets.token_hex(4)}"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = await client.post("/v1/tenants", json={"id": tenant, "name": "Shop"}, headers=admin)
    assert r.status_code == 201, r.text
    r = await client.post(f"/v1/tenants/{tenant}/keys", json={"scopes": ["events:write"]}, headers=admin)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(r: httpx.Response, status: int, type_suffix: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["type"].endswith(type_suffix) and body["status"] == status
    return body


async def test_a_key_over_its_rate_gets_429_with_retry_after_and_ratelimit_headers(
    client: httpx.AsyncClient,
) -> None:
    key, other = await new_key(client), await new_key(client)
    answers = [await client.post("/v1/events", json=EVENT, headers=bearer(key)) for _ in range(BURST + 1)]
    assert [r.status_code for r in answers[:BURST]] == [202] * BURST
    remaining = [int(r.headers["RateLimit-Remaining"]) for r in answers[:BURST]]
    assert remaining[0] == BURST - 1 and remaining == sorted(remaining, reverse=True)
    assert all(r.headers["RateLimit-Limit"] == str(BURST) for r in answers)
    refused = answers[-1]
    assert_problem(refused, 429, "rate-limited")
    assert refused.headers["Retry-After"] == "1"  # one token at 2/s
    assert refused.headers["RateLimit-Remaining"] == "0" and int(refused.headers["RateLimit-Reset"]) >= 1
    r = await client.post("/v1/events", json=EVENT, headers=bearer(other))
    assert r.status_code == 202  # another key has its own bucket

    async def passes_again() -> bool:
        return (await client.post("/v1/events", json=EVENT, headers=bearer(key))).status_code == 202

    await wait_until(passes_again, timeout=5, interval=1.0, message="the bucket refilled")


async def test_database_outage_is_503_with_retry_after_then_the_same_request_succeeds(
    client: httpx.AsyncClient, own_postgres: tuple[Path, EmbeddedPostgres]
) -> None:
    data, server = own_postgres
    key = await new_key(client)
    assert (await client.post("/v1/events", json=EVENT, headers=bearer(key))).status_code == 202
    server.stop()
    try:
        for headers in (bearer(key), bearer(ADMIN)):  # a tenant key is checked in the database too
            r = await client.post("/v1/events?tenant=x", json=EVENT, headers=headers)
            assert_problem(r, 503, "unavailable")
            assert int(r.headers["Retry-After"]) > 0
    finally:
        start_postgres(data)
    request = {"json": {**EVENT, "event_id": "bp-after-outage"}, "headers": bearer(key)}

    async def accepted() -> httpx.Response | None:
        r = await client.post("/v1/events", **request)
        assert r.status_code in (202, 503), r.text  # never a 500 while the pool reconnects
        return r if r.status_code == 202 else None

    r = await wait_until(accepted, timeout=20, interval=1.0, message="ingest accepts again")
    # the client's event_id makes the retry the same event (its id scoped to the tenant)
    again = await client.post("/v1/events", **request)
    assert r.json()["events"][0]["id"] == again.json()["events"][0]["id"] != "bp-after-outage"
