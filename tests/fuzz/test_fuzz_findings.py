"""What the API fuzzer found, replayed on every run (the default fuzz run is too small to meet each
again): every one was a 500, or a 200 whose streamed body broke off. Each is a 422 problem now, and an
event with NUL is rejected alone in its batch."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fuzz.problem_check import problem_violation
from tests.fuzz.target import FuzzTarget

pytestmark = pytest.mark.e2e
YEAR_ONE_EAST = "0001-01-01T00:00:00+10:05"  # no UTC equivalent a datetime can hold

FINDINGS: list[tuple[str, str, str, dict[str, Any]]] = [
    # (service, method, path, request) -- 64-bit overflow in a cursor
    ("dlq-replay", "GET", "/v1/dead-letters/audit", {"params": {"cursor": "672306091696671007178752"}}),
    # a time without UTC equivalent, in a query and on the streamed export
    ("dlq-replay", "GET", "/v1/dead-letters/stats", {"params": {"until": YEAR_ONE_EAST}}),
    ("dlq-replay", "GET", "/v1/dead-letters/export", {"params": {"since": YEAR_ONE_EAST}}),
    # NUL in a query string, and in a JSON body that is stored
    ("notification", "GET", "/v1/notifications/messages", {"params": {"cursor": "A4\x00"}}),
    (
        "notification",
        "POST",
        "/v1/subscriptions",
        {"json": {"url": "https://example.com/hooks", "description": "a\x00b"}},
    ),
    # a rate whose inverse overflows: it stopped the dispatcher of every endpoint
    (
        "notification",
        "POST",
        "/v1/subscriptions",
        {"json": {"url": "https://example.com/hooks", "rate_limit_per_s": 5e-324}},
    ),
]
GOOD_EVENT = {
    "type": "tracking.event",
    "carrier": "correios",
    "tracking_number": "FZ123456785BR",
    "status_code": "PO-01",
    "occurred_at": "2026-11-23T14:05:11-03:00",
}


@pytest.mark.parametrize(("service", "method", "path", "request_"), FINDINGS)
async def test_a_fuzzer_finding_is_a_422_problem(
    fuzz_target: FuzzTarget, service: str, method: str, path: str, request_: dict[str, Any]
) -> None:
    auth = {"Authorization": f"Bearer {fuzz_target.tenant_key}"}
    async with httpx.AsyncClient(base_url=fuzz_target.urls[service], timeout=15) as client:
        r = await client.request(method, path, headers=auth, **request_)
    assert r.status_code == 422, r.text
    assert problem_violation(r.status_code, r.headers.get("content-type"), r.content) is None


async def test_an_event_with_nul_is_rejected_alone_in_its_batch(fuzz_target: FuzzTarget) -> None:
    events = [GOOD_EVENT, {**GOOD_EVENT, "description": "entregue\x00"}]
    auth = {"Authorization": f"Bearer {fuzz_target.tenant_key}"}
    async with httpx.AsyncClient(base_url=fuzz_target.urls["ingest"], timeout=15) as client:
        r = await client.post("/v1/events", json={"events": events}, headers=auth)
    assert r.status_code == 207, r.text
    assert [e["index"] for e in r.json()["accepted"]] == [0]
    assert r.json()["errors"] == [
        {
            "index": 1,
            "errors": [{"field": "description", "message": "must not contain NUL characters (\\u0000)"}],
        }
    ]
