"""The dead-letter store in Postgres. Every function takes an open connection: the caller owns the
transaction, so a consumer batch or an HTTP request commits its writes (and its outbox rows) at once.

A tenant argument of None means "any tenant" (operators); otherwise rows of other tenants are invisible.

The value is personal data where it carries a recipient: it is stored sealed with the tenant's data key
(``rastro_kit.personal_data``; dead letters without a tenant under ``NO_TENANT``), with the blind indexes
of the e-mails, phones and documents found in it (``personal_index``), and opened again when read — a
replay sends the original bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rastro_dlq_replay.adapters.filter_sql import GROUP_COLUMNS, condition_for
from rastro_dlq_replay.domain.dead_letter import DeadLetter, Status
from rastro_dlq_replay.domain.query import Cursor, DeadLetterFilter, GroupBy
from rastro_dlq_replay.domain.stored import ReplayEntry, StoredDeadLetter
from rastro_dlq_replay.personal_index import NO_TENANT, VALUE_AAD, personal_indexes
from rastro_kit.personal_data import open_value, seal_value

__all__ = [
    "count_by_service_and_reason",
    "count_groups",
    "fetch_dead_letter",
    "fetch_for_replay",
    "fetch_page",
    "fetch_replays",
    "insert_dead_letter",
    "purge_dead_letter",
    "purge_matching",
    "record_failure_after_replay",
    "record_replay",
]

_COLUMNS = (
    "id, service, reason, error_message, status, dlq_topic, dlq_partition, dlq_offset, original_topic,"
    " original_partition, original_offset, consumer_group, key, value, header_names, header_values, tenant,"
    " subject, event_type, event_id, attempts, first_failed_at, last_failed_at, replay_count, stored_at,"
    " purged_at, purged_by"
)
_VISIBLE = "($2::text IS NULL OR tenant = $2)"


async def insert_dead_letter(conn: Any, letter: DeadLetter, dead_letter_id: str) -> bool:
    """Store a new dead letter; False when this failure of this record is stored already."""
    r = letter.record
    inserted = await conn.fetchval(
        "INSERT INTO dead_letters (id, service, reason, error_message, dlq_topic, dlq_partition, dlq_offset,"
        " original_topic, original_partition, original_offset, consumer_group, key, value, header_names,"
        " header_values, key_text, tenant, subject, event_type, event_id, attempts, first_failed_at,"
        " last_failed_at, personal_index)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,"
        " $21, $22, $23, $24)"
        " ON CONFLICT (service, original_topic, original_partition, original_offset) DO NOTHING RETURNING 1",
        dead_letter_id,
        letter.service,
        letter.reason,
        letter.error_message,
        r.topic,
        r.partition,
        r.offset,
        letter.original_topic,
        letter.original_partition,
        letter.original_offset,
        letter.consumer_group,
        r.key,
        await _sealed(conn, letter.tenant, r.value),
        [h[0] for h in r.headers],
        [h[1] for h in r.headers],
        letter.key_text,
        letter.tenant,
        letter.subject,
        letter.event_type,
        letter.event_id,
        letter.attempts,
        letter.first_failed_at,
        letter.last_failed_at,
        await personal_indexes(conn, letter.tenant or NO_TENANT, r.value),
    )
    return inserted is not None


async def _sealed(conn: Any, tenant: str | None, value: bytes | None) -> bytes | None:
    sealed = await seal_value(conn, tenant or NO_TENANT, VALUE_AAD, value)
    return None if sealed is None else sealed.encode("ascii")


async def record_failure_after_replay(conn: Any, letter: DeadLetter) -> str | None:
    """A replay failed again: count it once on the dead letter it came from.

    Returns that dead letter's id, or None when the replay id is not one of ours.
    """
    replay = await conn.fetchrow(
        "SELECT dead_letter_id, failed_at FROM replays WHERE replay_id = $1 FOR UPDATE", letter.replay_id
    )
    if replay is None:
        return None
    if replay["failed_at"] is not None:  # the same failure delivered twice
        return str(replay["dead_letter_id"])
    await conn.execute(
        "UPDATE replays SET failed_at = $2 WHERE replay_id = $1", letter.replay_id, letter.last_failed_at
    )
    await conn.execute(
        "UPDATE dead_letters SET replay_count = replay_count + 1, reason = $2, error_message = $3,"
        " last_failed_at = GREATEST(last_failed_at, $4), updated_at = now(),"
        " status = CASE WHEN status = 'purged' THEN status ELSE 'failed_after_replay' END"
        " WHERE id = $1",
        replay["dead_letter_id"],
        letter.reason,
        letter.error_message,
        letter.last_failed_at,
    )
    return str(replay["dead_letter_id"])


async def fetch_page(
    conn: Any, selection: DeadLetterFilter, after: Cursor | None, limit: int
) -> list[StoredDeadLetter]:
    cond = condition_for(selection, after)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE {cond.sql}"
        f" ORDER BY last_failed_at DESC, id DESC LIMIT ${len(cond.args) + 1}",
        *cond.args,
        limit,
    )
    return [await _stored(conn, row) for row in rows]


async def count_groups(
    conn: Any, selection: DeadLetterFilter, group_by: GroupBy
) -> list[tuple[str | None, int]]:
    column = GROUP_COLUMNS[group_by]
    cond = condition_for(selection)
    rows = await conn.fetch(
        f"SELECT {column} AS key, count(*) AS n FROM dead_letters WHERE {cond.sql}"
        f" GROUP BY {column} ORDER BY n DESC, key NULLS LAST",
        *cond.args,
    )
    return [(row["key"], int(row["n"])) for row in rows]


async def fetch_dead_letter(conn: Any, dead_letter_id: str, tenant: str | None) -> StoredDeadLetter | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE id = $1 AND {_VISIBLE}", dead_letter_id, tenant
    )
    return await _stored(conn, row) if row is not None else None


async def fetch_for_replay(
    conn: Any,
    ids: Sequence[str],
    tenant: str | None,
    *,
    lock: bool,
) -> list[StoredDeadLetter]:
    """The visible dead letters among ``ids``, locked against a concurrent purge when about to be replayed."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE id = ANY($1::text[]) AND {_VISIBLE}"
        f" ORDER BY id{' FOR UPDATE' if lock else ''}",
        list(ids),
        tenant,
    )
    return [await _stored(conn, row) for row in rows]


async def record_replay(conn: Any, entry: ReplayEntry) -> None:
    await conn.execute(
        "INSERT INTO replays (replay_id, dead_letter_id, requested_by, reason, target_topic, at, job_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        entry.replay_id,
        entry.dead_letter_id,
        entry.requested_by,
        entry.reason,
        entry.target_topic,
        entry.at,
        entry.job_id,
    )
    await conn.execute(
        "UPDATE dead_letters SET status = $2, updated_at = now() WHERE id = $1",
        entry.dead_letter_id,
        str(Status.REPLAYED),
    )


async def fetch_replays(conn: Any, dead_letter_id: str) -> list[ReplayEntry]:
    rows = await conn.fetch(
        "SELECT replay_id, dead_letter_id, requested_by, reason, target_topic, at, failed_at, job_id"
        " FROM replays"
        " WHERE dead_letter_id = $1 ORDER BY at, replay_id",
        dead_letter_id,
    )
    return [ReplayEntry(**dict(row)) for row in rows]


async def purge_dead_letter(conn: Any, dead_letter_id: str, tenant: str | None, purged_by: str) -> bool:
    """Drop the payload (it may hold personal data) and keep the metadata for the audit trail."""
    purged = await conn.fetchval(
        "UPDATE dead_letters SET status = 'purged', key = NULL, value = NULL, key_text = NULL,"
        " header_names = '{}', header_values = '{}', updated_at = now(),"
        " purged_at = coalesce(purged_at, now()), purged_by = coalesce(purged_by, $3)"
        f" WHERE id = $1 AND {_VISIBLE} RETURNING 1",
        dead_letter_id,
        tenant,
        purged_by,
    )
    return purged is not None


async def purge_matching(conn: Any, selection: DeadLetterFilter, purged_by: str) -> list[str]:
    """Purge every dead letter ``selection`` matches (the caller's tenant scope is in it); their ids."""
    cond = condition_for(selection)
    by = len(cond.args) + 1
    rows = await conn.fetch(
        "UPDATE dead_letters SET status = 'purged', key = NULL, value = NULL, key_text = NULL,"
        " header_names = '{}', header_values = '{}', updated_at = now(), purged_at = now(),"
        f" purged_by = ${by} WHERE {cond.sql} AND status <> 'purged' RETURNING id",
        *cond.args,
        purged_by,
    )
    return [str(r["id"]) for r in rows]


async def count_by_service_and_reason(conn: Any, selection: DeadLetterFilter) -> list[tuple[str, str, int]]:
    """What a replay or purge by ``selection`` would touch, grouped (a dry run)."""
    cond = condition_for(selection)
    rows = await conn.fetch(
        f"SELECT service, reason, count(*) AS n FROM dead_letters WHERE {cond.sql}"
        " GROUP BY service, reason ORDER BY n DESC, service, reason",
        *cond.args,
    )
    return [(str(r["service"]), str(r["reason"]), int(r["n"])) for r in rows]


async def _stored(conn: Any, row: Any) -> StoredDeadLetter:
    fields = dict(row)
    sealed = fields["value"]
    fields["value"] = await open_value(
        conn, fields["tenant"] or NO_TENANT, VALUE_AAD, sealed, shredded_as_none=True
    )
    names, values = fields.pop("header_names"), fields.pop("header_values")
    fields["headers"] = tuple(zip(names, values, strict=True))
    fields["status"] = Status(fields["status"])
    if sealed is not None and fields["value"] is None:
        # Its tenant was crypto-shredded: the payload is gone for good. It reads as a purged dead letter
        # (shown without a value, never replayed), not as an error in every listing.
        fields["status"] = Status.PURGED
    return StoredDeadLetter(**fields)
