"""dlq-replay against a real broker and Postgres, over real HTTP: store, list, count, show, replay, purge."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rastro_events.topics import replay_topic
from rastro_kit.dead_letters import dead_letter_headers
from rastro_kit.testing import TopicReader
from services.dlq_replay.tests.integration.dlq_harness import DlqHarness, running_dlq_replay

pytestmark = pytest.mark.integration
REPLAYS = replay_topic("normalization")


@pytest.fixture(scope="module")
async def dlq(
    kafka_bootstrap: str, kafka_idempotence: bool, database_url: str, topics: list[str]
) -> AsyncIterator[DlqHarness]:
    async with running_dlq_replay(kafka_bootstrap, kafka_idempotence, database_url) as harness:
        yield harness


def new_tenant() -> str:
    return f"t{secrets.token_hex(5)}"


def replay_id_of(record: Any) -> str:
    return dict(record.headers).get("rastro-replay-id", b"").decode()


async def test_dead_letters_are_stored_listed_filtered_and_counted(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    await dlq.dead_letter(tenant, "T1", reason="schema_violation")
    await dlq.dead_letter(tenant, "T2", reason="unmapped_carrier_code", message="no mapping for XX-99")
    await dlq.dead_letter(tenant, "T3", reason="schema_violation")
    await dlq.dead_letter(tenant, "T4", reason="handler_error", service="eta")
    items = await dlq.wait_for(4, tenant=tenant)

    assert [i["subject"] for i in items] == [f"{tenant}/T{n}" for n in (4, 3, 2, 1)]  # newest first
    first = items[-1]
    assert (first["service"], first["status"], first["replay_count"]) == ("normalization", "new", 0)
    assert (first["original_topic"], first["tenant"]) == ("rastro.tracking.raw.v1", tenant)
    assert first["event_type"] == "rastro.tracking.raw.v1" and first["value"]["tenantid"] == tenant
    assert len(await dlq.items(tenant=tenant, service="eta")) == 1
    assert len(await dlq.items(tenant=tenant, reason="schema_violation")) == 2
    assert [i["subject"] for i in await dlq.items(tenant=tenant, q="NO MAPPING")] == [f"{tenant}/T2"]
    assert len(await dlq.items(tenant=tenant, since=items[1]["last_failed_at"])) == 2
    assert len(await dlq.items(tenant=tenant, until=items[1]["last_failed_at"])) == 2

    stats = await dlq.client.get(
        "/v1/dead-letters/stats", params={"tenant": tenant, "group_by": "service"}, headers=dlq.auth()
    )
    assert stats.json() == {
        "total": 4,
        "groups": [{"key": "normalization", "count": 3}, {"key": "eta", "count": 1}],
    }
    stats = await dlq.client.get("/v1/dead-letters/stats", params={"tenant": tenant}, headers=dlq.auth())
    assert stats.json()["groups"][0] == {"key": "schema_violation", "count": 2}


async def test_pages_follow_the_cursor_without_gaps_or_repeats(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    for n in range(5):
        await dlq.dead_letter(tenant, f"P{n}")
    everything = await dlq.wait_for(5, tenant=tenant)
    seen: list[str] = []
    params: dict[str, Any] = {"tenant": tenant, "limit": 2}
    for _ in range(3):
        page = (await dlq.client.get("/v1/dead-letters", params=params, headers=dlq.auth())).json()
        seen += [i["id"] for i in page["items"]]
        params["cursor"] = page["next_cursor"]
    assert seen == [i["id"] for i in everything] and params["cursor"] is None
    bad = await dlq.client.get("/v1/dead-letters", params={"cursor": "garbage"}, headers=dlq.auth())
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


async def test_replay_sends_the_original_bytes_back_to_the_failing_service(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    original = [("x-trace", b"abc"), ("x-bin", b"\x00\xff")]
    broken = await dlq.dead_letter(
        tenant, "BIN", reason="invalid_json", value=b"\xff\xfe{broken", original=original
    )
    good = await dlq.dead_letter(tenant, "JSON")
    by_subject = {i["subject"]: i["id"] for i in await dlq.wait_for(2, tenant=tenant)}
    ids = [by_subject[f"{tenant}/BIN"], by_subject[f"{tenant}/JSON"]]
    binary = await dlq.show(ids[0])
    assert (binary["key"], binary["key_encoding"], binary["value_encoding"]) == (
        f"{tenant}/BIN",
        "utf-8",
        "base64",
    )
    assert {"name": "x-bin", "value": "AP8=", "encoding": "base64"} in binary["headers"]

    dry = await dlq.replay([*ids, "01NOSUCHDEADLETTER"], dry_run=True)
    assert (dry["replayed"], dry["replay_ids"], dry["dry_run"]) == (2, [], True)
    assert [i["status"] for i in await dlq.items(tenant=tenant)] == ["new", "new"]

    done = await dlq.replay([*ids, "01NOSUCHDEADLETTER"])
    assert done["replayed"] == 2 and done["skipped"] == [{"id": "01NOSUCHDEADLETTER", "reason": "not_found"}]
    replay_ids = {r["id"]: r["replay_id"] for r in done["replays"]}
    async with TopicReader(dlq.bootstrap, REPLAYS) as reader:
        records = await reader.wait_for(lambda r: replay_id_of(r) in done["replay_ids"], count=2)
    for sent, dead_letter_id in ((broken, ids[0]), (good, ids[1])):
        [record] = [r for r in records if replay_id_of(r) == replay_ids[dead_letter_id]]
        assert (record.key, record.value) == (sent.key, sent.value)  # byte for byte
        kept = [(k, v) for k, v in sent.headers if not k.startswith("rastro-dlq-")]
        marks = [
            ("rastro-replay-id", replay_ids[dead_letter_id].encode()),
            ("rastro-replayed-by", b"operator"),
        ]
        assert list(record.headers) == kept + marks
    shown = await dlq.show(ids[0])
    assert shown["status"] == "replayed"
    assert [(r["requested_by"], r["reason"]) for r in shown["replays"]] == [("operator", "fixed the parser")]


async def test_a_replay_that_fails_again_returns_to_its_dead_letter(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    await dlq.dead_letter(tenant, "AGAIN", reason="unmapped_carrier_code")
    [item] = await dlq.wait_for(1, tenant=tenant)
    done = await dlq.replay([item["id"]])
    async with TopicReader(dlq.bootstrap, REPLAYS) as reader:
        [replayed] = await reader.wait_for(lambda r: replay_id_of(r) in done["replay_ids"])

    # What normalization's runner writes when the replayed record fails again — delivered twice.
    headers = dead_letter_headers(
        replayed.headers, topic=replayed.topic, partition=replayed.partition, offset=replayed.offset,
        group="normalization", reason="unmapped_carrier_code", message="still no mapping for XX-99",
    )  # fmt: skip
    for _ in range(2):
        await dlq.send("rastro.normalization.dlq", replayed.key, replayed.value, headers)
    await dlq.dead_letter(tenant, "AGAIN", value=b"marker")  # same key, same partition: read after those

    items = await dlq.wait_for(2, tenant=tenant)  # the marker, and the original dead letter: no third row
    again = next(i for i in items if i["id"] == item["id"])
    assert (again["status"], again["replay_count"]) == ("failed_after_replay", 1)
    assert again["error_message"] == "still no mapping for XX-99"
    assert (await dlq.show(item["id"]))["replays"][0]["failed_at"] is not None


async def test_a_tenant_key_sees_only_its_own_tenant(dlq: DlqHarness) -> None:
    alpha, beta = dlq.tenants["alpha"], dlq.tenants["beta"]
    marker = secrets.token_hex(6)
    await dlq.dead_letter(alpha, f"A-{marker}")
    await dlq.dead_letter(beta, f"B-{marker}")
    await dlq.dead_letter("x", "y", key=f"no-tenant-{marker}\x00".encode(), value=b"\x00 not json")
    everything = await dlq.wait_for(3, q=marker)  # the operator sees all three
    beta_id = next(i["id"] for i in everything if i["tenant"] == beta)
    tenantless_id = next(i["id"] for i in everything if i["tenant"] is None)

    assert [i["tenant"] for i in await dlq.items("alpha", q=marker)] == [alpha]
    for method, path, params in (
        ("GET", f"/v1/dead-letters/{beta_id}", None),
        ("DELETE", f"/v1/dead-letters/{beta_id}", None),
        ("GET", f"/v1/dead-letters/{tenantless_id}", None),
        ("GET", "/v1/dead-letters", {"tenant": beta}),
    ):
        response = await dlq.client.request(method, path, params=params, headers=dlq.auth("alpha"))
        assert response.status_code == 404, (method, path)
    refused = await dlq.replay([beta_id], role="alpha")
    assert (refused["replayed"], refused["skipped"]) == (0, [{"id": beta_id, "reason": "not_found"}])
    stats = await dlq.client.get(
        "/v1/dead-letters/stats", params={"group_by": "tenant", "q": marker}, headers=dlq.auth("alpha")
    )
    assert stats.json() == {"total": 1, "groups": [{"key": alpha, "count": 1}]}
    assert (await dlq.client.get("/v1/dead-letters", headers=dlq.auth("unscoped"))).status_code == 403
    assert (await dlq.client.get("/v1/dead-letters")).status_code == 401


async def test_purge_erases_the_payload_and_keeps_the_record(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    await dlq.dead_letter(tenant, "GONE")
    [item] = await dlq.wait_for(1, tenant=tenant)
    for _ in range(2):  # purging twice is harmless
        assert (
            await dlq.client.delete(f"/v1/dead-letters/{item['id']}", headers=dlq.auth())
        ).status_code == 204
    shown = await dlq.show(item["id"])
    assert (shown["status"], shown["value"], shown["key"], shown["headers"]) == ("purged", None, None, [])
    assert await dlq.items(tenant=tenant) == []
    assert (await dlq.replay([item["id"]]))["skipped"] == [{"id": item["id"], "reason": "purged"}]


async def test_bad_requests_are_problems(dlq: DlqHarness) -> None:
    replay, auth = "/v1/dead-letters/replay", dlq.auth()
    for response in (
        await dlq.client.post(replay, json={"ids": ["x"], "reason": "  "}, headers=auth),
        await dlq.client.post(replay, json={"ids": [], "reason": "r"}, headers=auth),
        await dlq.client.get("/v1/dead-letters/stats", params={"group_by": "colour"}, headers=auth),
        await dlq.client.get("/v1/dead-letters", params={"limit": 0}, headers=auth),
        await dlq.client.get("/v1/dead-letters", params={"q": "a\x00b"}, headers=auth),
        await dlq.client.post(replay, json={"ids": ["not an id"], "reason": "r"}, headers=auth),
    ):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
    for missing_id in ("01NOSUCHDEADLETTER", "%00", "x" * 65):
        missing = await dlq.client.get(f"/v1/dead-letters/{missing_id}", headers=auth)
        assert missing.status_code == 404 and missing.json()["status"] == 404
