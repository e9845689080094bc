"""dlq-replay by filter, over real HTTP against a real broker and Postgres: more filters, export, replay
jobs (dry run, rate, progress, cancel), purge by filter with confirmation, the audit trail, and access."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from rastro_events.topics import replay_topic
from rastro_kit.testing import TopicReader, wait_until
from services.dlq_replay.tests.integration.dlq_harness import DlqHarness, running_dlq_replay

pytestmark = pytest.mark.integration
REPLAY = "/v1/dead-letters/replay"


@pytest.fixture(scope="module")
async def dlq(
    kafka_bootstrap: str, kafka_idempotence: bool, database_url: str, topics: list[str]
) -> AsyncIterator[DlqHarness]:
    async with running_dlq_replay(kafka_bootstrap, kafka_idempotence, database_url) as harness:
        yield harness


def new_tenant() -> str:
    return f"j{secrets.token_hex(5)}"


async def post(dlq: DlqHarness, path: str, body: dict[str, Any], role: str | None = None) -> Any:
    return await dlq.client.post(path, json=body, headers=dlq.auth(role))


async def finished_job(dlq: DlqHarness, job_id: str, role: str | None = None) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = (await dlq.client.get(f"/v1/replay-jobs/{job_id}", headers=dlq.auth(role))).json()
        return job if job["status"] in ("completed", "cancelled") else None

    return dict(await wait_until(done, timeout=30, interval=0.1, message=f"job {job_id} to finish"))


async def test_more_filters_top_groups_and_export_as_json_lines(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    await dlq.dead_letter(tenant, "E1", reason="schema_violation")
    odd = {
        "type": "rastro.tracking.raw.v1",
        "tenantid": tenant,
        "subject": f"{tenant}/E2",
        "note": "a\u2028b",
    }
    await dlq.dead_letter(
        tenant, "E2", reason="schema_violation", value=json.dumps(odd, ensure_ascii=False).encode()
    )
    await dlq.dead_letter(tenant, "E3", reason="unmapped_carrier_code")
    await dlq.dead_letter(tenant, "E4", reason="handler_error", value=b"\xff not json either")
    items = await dlq.wait_for(4, tenant=tenant)

    raw = await dlq.items(tenant=tenant, event_type="rastro.tracking.raw.v1")
    assert len(raw) == 3  # the fourth has no CloudEvents type: its value is not JSON
    stats = await dlq.client.get(
        "/v1/dead-letters/stats", params={"tenant": tenant, "top": 1}, headers=dlq.auth()
    )
    assert stats.json() == {"total": 4, "groups": [{"key": "schema_violation", "count": 2}]}

    replayed = await dlq.replay([items[0]["id"]])
    assert replayed["replayed"] == 1
    assert [i["id"] for i in await dlq.items(tenant=tenant, status="replayed")] == [items[0]["id"]]
    assert len(await dlq.items(tenant=tenant, status=["new", "replayed"])) == 4

    response = await dlq.client.get(
        "/v1/dead-letters/export", params={"tenant": tenant, "reason": "schema_violation"}, headers=dlq.auth()
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    assert len(response.text.splitlines()) == 2  # U+2028 in a value is escaped: one line, one dead letter
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert "a\u2028b" in {line["value"].get("note") for line in lines}
    assert sorted(line["subject"] for line in lines) == [f"{tenant}/E1", f"{tenant}/E2"]
    assert all(line["value"]["tenantid"] == tenant for line in lines)


async def test_replay_by_filter_dry_run_then_a_job_at_its_rate_with_an_audit_trail(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    for n in range(12):
        await dlq.dead_letter(tenant, f"R{n}", reason="unmapped_carrier_code")
    await dlq.dead_letter(tenant, "OTHER", reason="schema_violation")
    await dlq.dead_letter(tenant, "ETA", reason="unmapped_carrier_code", service="eta")
    await dlq.wait_for(14, tenant=tenant)
    selection = {"tenant": tenant, "reason": "unmapped_carrier_code"}

    dry = await post(dlq, REPLAY, {"filter": selection, "reason": "mapping added", "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["total"] == 13 and dry.json()["replayable"] == 13
    assert dry.json()["groups"] == [
        {"service": "normalization", "reason": "unmapped_carrier_code", "count": 12},
        {"service": "eta", "reason": "unmapped_carrier_code", "count": 1},
    ]
    assert {i["status"] for i in await dlq.items(tenant=tenant)} == {"new"}  # a dry run changes nothing

    body = {"filter": {**selection, "service": "normalization"}, "reason": "mapping added"}
    created = await post(dlq, REPLAY, {**body, "rate_per_second": 8})
    assert created.status_code == 202, created.text
    job = created.json()
    assert created.headers["location"] == f"/v1/replay-jobs/{job['id']}"
    assert (job["total"], job["rate_per_second"], job["requested_by"]) == (12, 8.0, "operator")
    done = await finished_job(dlq, job["id"])
    assert (done["status"], done["replayed"], done["skipped"], done["progress"]) == ("completed", 12, 0, 1.0)
    took = datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(done["started_at"])
    assert took.total_seconds() >= 1.0  # 12 at 8/s: chunks of 4, a pause of 0.5 s after each but the last

    replays = await dlq.items(tenant=tenant, status="replayed")
    assert len(replays) == 12 and {i["service"] for i in replays} == {"normalization"}
    shown = await dlq.show(replays[0]["id"])
    assert [(r["job_id"], r["reason"]) for r in shown["replays"]] == [(job["id"], "mapping added")]
    async with TopicReader(dlq.bootstrap, replay_topic("normalization")) as reader:
        sent = await reader.wait_for(
            lambda r: r.key is not None and r.key.startswith(f"{tenant}/R".encode()), count=12
        )
    assert len({r.key for r in sent}) == 12  # each once

    again = await post(dlq, REPLAY, body)  # nothing left that is new or failed_after_replay
    assert (await finished_job(dlq, again.json()["id"]))["total"] == 0

    trail = await dlq.client.get("/v1/dead-letters/audit", params={"job_id": job["id"]}, headers=dlq.auth())
    entries = trail.json()["items"]
    assert [e["action"] for e in entries] == ["replay_job_finished", "replay_job_created"]
    assert entries[0]["counts"] == {"total": 12, "replayed": 12, "skipped": 0}
    assert entries[1]["filter"]["reason"] == "unmapped_carrier_code"
    assert (entries[1]["actor"], entries[1]["reason"]) == ("operator", "mapping added")


async def test_a_job_can_be_cancelled_and_the_list_pages(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    for n in range(6):
        await dlq.dead_letter(tenant, f"C{n}")
    await dlq.wait_for(6, tenant=tenant)
    created = await post(
        dlq, REPLAY, {"filter": {"tenant": tenant}, "reason": "slowly", "rate_per_second": 0.5}
    )
    job_id = created.json()["id"]
    cancelled = await dlq.client.post(f"/v1/replay-jobs/{job_id}/cancel", headers=dlq.auth())
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["replayed"] <= 1  # chunks of 1 at 0.5/s: at most the first went
    again = await dlq.client.post(f"/v1/replay-jobs/{job_id}/cancel", headers=dlq.auth())
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"

    first = (await dlq.client.get("/v1/replay-jobs", params={"limit": 1}, headers=dlq.auth())).json()
    assert first["items"][0]["id"] == job_id and first["next_cursor"] == job_id
    listed = await dlq.client.get(
        "/v1/replay-jobs", params={"status": "cancelled", "limit": 500}, headers=dlq.auth()
    )
    assert job_id in [j["id"] for j in listed.json()["items"]]


async def test_purge_by_filter_needs_a_filter_and_the_confirmed_count(dlq: DlqHarness) -> None:
    tenant = new_tenant()
    for n in range(3):
        await dlq.dead_letter(tenant, f"P{n}", reason="invalid_json")
    await dlq.dead_letter(tenant, "KEEP", reason="schema_violation")
    await dlq.wait_for(4, tenant=tenant)
    purge = "/v1/dead-letters/purge"
    selection = {"tenant": tenant, "reason": "invalid_json"}

    everything = await post(dlq, purge, {"filter": {}, "reason": "clean up"})
    assert everything.status_code == 422
    dry = await post(dlq, purge, {"filter": selection, "reason": "junk", "dry_run": True})
    assert dry.json() == {
        "dry_run": True,
        "purged": 3,
        "groups": [{"service": "normalization", "reason": "invalid_json", "count": 3}],
    }
    await dlq.dead_letter(tenant, "P3", reason="invalid_json")  # arrives between the look and the purge
    await dlq.wait_for(5, tenant=tenant)
    stale = await post(dlq, purge, {"filter": selection, "reason": "junk", "expected_count": 3})
    assert stale.status_code == 409 and stale.json()["matching"] == 4
    done = await post(dlq, purge, {"filter": selection, "reason": "junk", "expected_count": 4})
    assert done.json()["purged"] == 4
    assert [i["subject"] for i in await dlq.items(tenant=tenant)] == [f"{tenant}/KEEP"]

    trail = await dlq.client.get("/v1/dead-letters/audit", params={"action": "purge"}, headers=dlq.auth())
    entry = next(e for e in trail.json()["items"] if e["filter"] and e["filter"].get("tenant") == tenant)
    assert (entry["counts"], entry["reason"], len(entry["dead_letter_ids"])) == ({"purged": 4}, "junk", 4)


async def test_tenant_keys_reach_only_their_tenant_and_unscoped_keys_nothing(dlq: DlqHarness) -> None:
    alpha, beta = dlq.tenants["alpha"], dlq.tenants["beta"]
    marker = secrets.token_hex(6)
    await dlq.dead_letter(alpha, f"A-{marker}", reason="unmapped_carrier_code")
    await dlq.dead_letter(beta, f"B-{marker}", reason="unmapped_carrier_code")
    await dlq.wait_for(2, q=marker)

    refused = await post(dlq, REPLAY, {"filter": {"tenant": beta}, "reason": "x"}, role="alpha")
    assert refused.status_code == 404
    created = await post(dlq, REPLAY, {"filter": {"q": marker}, "reason": "mine"}, role="alpha")
    assert created.status_code == 202 and created.json()["tenant"] == alpha
    job = await finished_job(dlq, created.json()["id"], role="alpha")
    assert (job["total"], job["replayed"], job["requested_by"]) == (1, 1, created.json()["requested_by"])
    assert job["requested_by"].startswith("key_")  # the key's id, never the key

    beta_jobs = (await dlq.client.get("/v1/replay-jobs", headers=dlq.auth("beta"))).json()["items"]
    assert job["id"] not in [j["id"] for j in beta_jobs]
    assert (await dlq.client.get(f"/v1/replay-jobs/{job['id']}", headers=dlq.auth("beta"))).status_code == 404
    beta_trail = (await dlq.client.get("/v1/dead-letters/audit", headers=dlq.auth("beta"))).json()["items"]
    assert all(e["tenant"] == beta for e in beta_trail)
    alpha_trail = (await dlq.client.get("/v1/dead-letters/audit", headers=dlq.auth("alpha"))).json()["items"]
    assert job["id"] in {e["job_id"] for e in alpha_trail}

    for method, path, body in (
        ("POST", REPLAY, {"filter": {"q": marker}, "reason": "x"}),
        ("POST", "/v1/dead-letters/purge", {"filter": {"q": marker}, "reason": "x"}),
        ("GET", "/v1/replay-jobs", None),
        ("GET", "/v1/dead-letters/audit", None),
        ("GET", "/v1/dead-letters/export", None),
    ):
        response = await dlq.client.request(method, path, json=body, headers=dlq.auth("unscoped"))
        assert response.status_code == 403, (method, path)


async def test_bad_job_requests_are_problems(dlq: DlqHarness) -> None:
    for body in (
        {"ids": ["A"], "filter": {}, "reason": "both"},
        {"reason": "neither"},
        {"ids": ["A"], "reason": "rate needs a filter", "rate_per_second": 5},
        {"filter": {"colour": "red"}, "reason": "unknown field"},
        {"filter": {}, "reason": "too fast", "rate_per_second": 10**9},
        {"filter": {"status": ["purged"]}, "reason": "purged ones cannot be replayed"},
    ):
        response = await post(dlq, REPLAY, body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    missing = await dlq.client.get("/v1/replay-jobs/01NOSUCHJOB", headers=dlq.auth())
    assert missing.status_code == 404
