"""``rastro dlq`` against a real dlq-replay served on a port (real broker, Postgres)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rastro_cli.main import app
from services.dlq_replay.tests.integration.dlq_harness import ADMIN_KEY, DlqHarness, running_dlq_replay

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def dlq(
    kafka_bootstrap: str, kafka_idempotence: bool, database_url: str, topics: list[str]
) -> AsyncIterator[DlqHarness]:
    async with running_dlq_replay(kafka_bootstrap, kafka_idempotence, database_url) as harness:
        yield harness


async def rastro(dlq: DlqHarness, *args: str, key: str = ADMIN_KEY, stdin: str | None = None) -> Result:
    """The CLI is synchronous: run it in a thread so the app keeps serving on this loop."""
    env = {"RASTRO_BASE_URL": str(dlq.client.base_url), "RASTRO_API_KEY": key, "COLUMNS": "250"}
    return await asyncio.to_thread(CliRunner().invoke, app, ["dlq", *args], input=stdin, env=env)


async def test_an_sre_finds_what_fails_replays_it_by_filter_and_purges_the_rest(
    dlq: DlqHarness, tmp_path: Path
) -> None:
    tenant = f"cli{secrets.token_hex(4)}"
    for n in range(3):
        await dlq.dead_letter(tenant, f"U{n}", reason="unmapped_carrier_code", message="no mapping for XX-99")
    await dlq.dead_letter(tenant, "S0", reason="schema_violation", value=b"\xff\xfe binary")
    items = await dlq.wait_for(4, tenant=tenant)

    listed = await rastro(dlq, "list", "--tenant", tenant)
    assert listed.exit_code == 0, listed.output
    assert all(i["id"] in listed.output for i in items) and "no mapping for XX-99" in listed.output
    only = await rastro(dlq, "list", "--tenant", tenant, "-e", "schema_violation")
    assert f"{tenant}/S0" in only.output and f"{tenant}/U0" not in only.output
    stats = await rastro(dlq, "stats", "--tenant", tenant, "--top", "1")
    assert "top 1 by reason (of 4)" in stats.output and "unmapped_carrier_code │ 3" in stats.output
    binary = next(i["id"] for i in items if i["reason"] == "schema_violation")
    shown = await rastro(dlq, "show", binary)
    assert shown.exit_code == 0 and "(base64)" in shown.output and "rastro-dlq-error-class" in shown.output

    filters = ("--tenant", tenant, "--error-class", "unmapped_carrier_code")
    assert (await rastro(dlq, "replay", *filters)).exit_code == 2  # --reason is required
    dry = await rastro(dlq, "replay", *filters, "--reason", "mapping added", "--dry-run")
    assert "would replay 3 of 3" in dry.output and "normalization" in dry.output
    done = await rastro(dlq, "replay", *filters, "--reason", "mapping added", "--rate", "50")
    assert done.exit_code == 0, done.output
    assert "3/3" in done.output and "completed" in done.output
    job_id = done.output.split("replay job ", 1)[1].split(":", 1)[0].strip()
    assert job_id in (await rastro(dlq, "jobs")).output
    assert "mapping added" in (await rastro(dlq, "jobs", job_id)).output
    assert "replay_job_finished" in (await rastro(dlq, "audit", "--job", job_id)).output

    exported = tmp_path / "dead.jsonl"
    assert (await rastro(dlq, "export", "--tenant", tenant, "-o", str(exported))).exit_code == 0
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(lines) == 4 and {line["status"] for line in lines} == {"new", "replayed"}

    purge = ("purge", "--tenant", tenant, "-e", "schema_violation", "--reason", "junk")
    declined = await rastro(dlq, *purge, stdin="n\n")
    assert declined.exit_code == 1 and "1 dead letters match" in declined.output
    assert len(await dlq.items(tenant=tenant)) == 4
    purged = await rastro(dlq, *purge, "--yes")
    assert purged.exit_code == 0 and "purged 1" in purged.output
    assert len(await dlq.items(tenant=tenant)) == 3


async def test_errors_are_readable_and_exit_non_zero(dlq: DlqHarness) -> None:
    forbidden = await rastro(dlq, "list", key=dlq.keys["unscoped"])
    assert forbidden.exit_code == 1 and "403" in forbidden.output
    missing = await rastro(dlq, "show", "01NOSUCHDEADLETTER")
    assert missing.exit_code == 1 and "404" in missing.output
    both = await rastro(dlq, "replay", "01A", "--service", "eta", "--reason", "x")
    assert both.exit_code == 2
    nothing = await rastro(dlq, "purge", "--reason", "everything?")
    assert nothing.exit_code == 2 and "at least one filter" in nothing.output
