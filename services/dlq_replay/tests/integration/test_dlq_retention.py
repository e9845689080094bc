"""Retention of the dead-letter store against real Postgres: dead letters untouched past the retention go
— whatever their status, with their replays and job items — unless an active job still has to replay
them; recent ones and other tenants' stay; finished jobs go once nothing kept names them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import count
from typing import Any

import pytest

from rastro_dlq_replay.housekeeping import OLD_DEAD_LETTERS, purge_store
from rastro_kit.retention import Cutoff
from rastro_kit.testing import migrated_schema

pytestmark = pytest.mark.integration
MONTH = timedelta(days=30)
_offsets = count()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Any]:
    async with migrated_schema(database_url, "dret", ("rastro_dlq_replay.migrations",)) as pool:
        yield pool


async def letter(pool: Any, id_: str, tenant: str | None, age_days: int, status: str = "new") -> None:
    await pool.execute(
        "INSERT INTO dead_letters (id, service, reason, status, dlq_topic, dlq_partition, dlq_offset,"
        " original_topic, original_partition, original_offset, tenant, first_failed_at, last_failed_at,"
        " stored_at, updated_at)"
        " VALUES ($1, 'normalization', 'handler_error', $2, 'rastro.normalization.dlq', 0, $3,"
        " 'rastro.tracking.raw.v1', 0, $3, $4, now(), now(), now() - $5::interval, now() - $5::interval)",
        id_,
        status,
        next(_offsets),
        tenant,
        timedelta(days=age_days),
    )


async def job(pool: Any, id_: str, status: str, age_days: int, letters: list[str]) -> None:
    await pool.execute(
        "INSERT INTO replay_jobs (id, requested_by, reason, filter, rate_per_second, status, total,"
        " created_at, finished_at, updated_at)"
        " VALUES ($1, 'key', 'test', '{}', 10, $2, $3, now() - $4::interval,"
        " CASE WHEN $2 IN ('completed', 'cancelled') THEN now() - $4::interval END, now() - $4::interval)",
        id_,
        status,
        len(letters),
        timedelta(days=age_days),
    )
    for seq, letter_id in enumerate(letters, 1):
        await pool.execute(
            "INSERT INTO replay_job_items (job_id, seq, dead_letter_id) VALUES ($1, $2, $3)",
            id_,
            seq,
            letter_id,
        )


async def replay(pool: Any, id_: str, letter_id: str, job_id: str | None = None) -> None:
    await pool.execute(
        "INSERT INTO replays (replay_id, dead_letter_id, requested_by, reason, target_topic, job_id)"
        " VALUES ($1, $2, 'key', 'test', 'rastro.normalization.replay', $3)",
        id_,
        letter_id,
        job_id,
    )


async def test_old_dead_letters_go_with_their_replays_and_items_unless_an_active_job_needs_them(
    pool: Any,
) -> None:
    for i in range(4):  # old, in every status: more than one batch of 3
        await letter(pool, f"old{i}", "acme", 40, ("new", "replayed", "failed_after_replay", "purged")[i])
    await letter(pool, "old-in-active-job", "acme", 40)
    await letter(pool, "recent", "acme", 5)
    await letter(pool, "recent-other", "globex", 1)
    await letter(pool, "operator-old", None, 90)  # no tenant: an operator's dead letter, also purged
    await replay(pool, "r1", "old1")
    await replay(pool, "r2", "recent")
    await job(pool, "job-done", "completed", 40, ["old0", "old1"])
    await job(pool, "job-running", "running", 40, ["old-in-active-job"])
    await job(pool, "job-kept", "completed", 40, ["recent"])
    await replay(pool, "r3", "recent", job_id="job-kept")  # a kept replay still names this job

    counts = await purge_store(pool, MONTH, batch=3)

    assert counts == {"dead_letters": 5, "replays": 1, "replay_job_items": 2, "replay_jobs": 1}
    left = {r[0] for r in await pool.fetch("SELECT id FROM dead_letters")}
    assert left == {"old-in-active-job", "recent", "recent-other"}
    assert {r[0] for r in await pool.fetch("SELECT replay_id FROM replays")} == {"r2", "r3"}
    assert {r[0] for r in await pool.fetch("SELECT id FROM replay_jobs")} == {"job-running", "job-kept"}
    items = await pool.fetch("SELECT job_id, dead_letter_id FROM replay_job_items ORDER BY job_id")
    assert [tuple(r) for r in items] == [("job-kept", "recent"), ("job-running", "old-in-active-job")]

    # Once the job is over (and past the retention), its letter goes too.
    await pool.execute(
        "UPDATE replay_jobs SET status = 'completed', finished_at = now() - interval '40 days'"
        " WHERE id = 'job-running'"
    )
    assert await purge_store(pool, MONTH) == {
        "dead_letters": 1,
        "replays": 0,
        "replay_job_items": 1,
        "replay_jobs": 1,
    }


async def test_the_purge_is_served_by_indexes(pool: Any) -> None:
    """Seq scans off, so tiny tables still show which indexes the statement can use: the new ones of
    migration 0003 find the old letters and their job items (docs/database.md has the plan)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0] for r in await conn.fetch(f"EXPLAIN {Cutoff(30).scope(OLD_DEAD_LETTERS)}", MONTH, [], 10)
        )
    assert "Index Scan on dead_letters_updated_at" in plan, plan
    assert "replay_job_items_dead_letter" in plan, plan
    assert "Seq Scan" not in plan, plan
