"""The durable delivery queue in Postgres: claim due messages, record attempts, release claims.

A claim leases a message: ``leased_until`` and ``next_attempt_at`` move a lease into the future, so
if the claiming process dies mid-send the message simply falls due again when the lease runs out and
another (or the restarted) instance sends it — at least once, never lost. ``claim_id`` fences a
sender that outlived its lease: its late result updates nothing.

What may be claimed (one transaction under a transaction-scoped advisory lock, so that several
instances claiming at once still respect the caps; one pass over the pending messages per claim):

- ``pending``, due (``next_attempt_at <= now()``), and its subscription enabled;
- no earlier ``pending`` message (by ``seq``) for the same subscription and ordering key (shipment):
  events of one shipment reach one endpoint in order, and a message waiting for a retry holds back
  the later messages of its shipment (only of its shipment) for that endpoint;
- at most ``per_endpoint`` leased messages per subscription, across every instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rastro_notification.adapters.repository import new_id
from rastro_notification.domain.delivery import AttemptResult
from rastro_notification.domain.message_lifecycle import MessageStatus, Transition, describe_failure

__all__ = ["Claim", "claim_due", "record_attempt", "release", "seconds_until_next_due"]

# Step 1, no locks: the heads of each (subscription, shipment) queue that are due, ranked per subscription
# after the ones already in flight. One pass over the pending rows (the ``messages_in_order`` index has
# their order) and no correlated subqueries, so a plan made on stale statistics stays linear.
_CANDIDATES = """
WITH pending AS MATERIALIZED (
    SELECT id, subscription_id, next_attempt_at, seq, leased_until,
           row_number() OVER (PARTITION BY subscription_id, ordering_key ORDER BY seq) AS place
    FROM messages WHERE status = 'pending'
), busy AS MATERIALIZED (
    SELECT subscription_id, count(*) AS n FROM pending WHERE leased_until > now() GROUP BY subscription_id
), heads AS (
    SELECT p.id, p.next_attempt_at, p.seq,
           coalesce(b.n, 0) + row_number() OVER (PARTITION BY p.subscription_id
                                                 ORDER BY p.next_attempt_at, p.seq) AS slot
    FROM pending p
    JOIN subscriptions s ON s.id = p.subscription_id AND s.enabled
    LEFT JOIN busy b ON b.subscription_id = p.subscription_id
    WHERE p.place = 1 AND p.next_attempt_at <= now()
)
SELECT id FROM heads WHERE slot <= $2 ORDER BY next_attempt_at, seq LIMIT $1
"""

# Step 2: lease them, by primary key; the conditions are checked again on the locked rows.
_LEASE = """
WITH picked AS (
    SELECT id FROM messages
    WHERE id = ANY($1::text[]) AND status = 'pending' AND next_attempt_at <= now()
    FOR UPDATE SKIP LOCKED
)
UPDATE messages m
SET leased_until = now() + make_interval(secs => $2), next_attempt_at = now() + make_interval(secs => $2),
    claim_id = $3
FROM picked, subscriptions s
WHERE m.id = picked.id AND s.id = m.subscription_id
RETURNING m.id, m.subscription_id, m.body, m.attempts, m.round_attempts, s.url, s.secret, m.seq
"""

_FINISH = """
UPDATE messages
SET status = $3, attempts = attempts + 1, round_attempts = round_attempts + 1,
    next_attempt_at = CASE WHEN $4::float8 IS NULL THEN now() ELSE now() + make_interval(secs => $4) END,
    leased_until = NULL, claim_id = NULL, last_attempt_at = $5, last_error = $6,
    delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END
WHERE id = $1 AND claim_id = $2
RETURNING 1
"""

_ATTEMPT = """
INSERT INTO attempts (message_id, subscription_id, attempt_number, attempted_at, status_code, latency_ms,
                      response_excerpt, error, error_detail, outcome)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM messages WHERE id = $1)
"""

_ENDPOINT_HEALTH = """
UPDATE subscriptions
SET failing_since = CASE WHEN $2 THEN NULL ELSE coalesce(failing_since, $3) END,
    enabled = enabled AND NOT $4,
    disabled_reason = CASE WHEN $4 THEN $5 ELSE disabled_reason END,
    updated_at = CASE WHEN $4 THEN now() ELSE updated_at END
WHERE id = $1
"""


@dataclass(frozen=True)
class Claim:
    message_id: str
    claim_id: str
    subscription_id: str
    url: str
    secrets: tuple[str, ...]
    body: bytes
    attempt_number: int  # among every attempt of the message
    attempt_in_round: int  # since creation or the last resend: drives the retry schedule


async def claim_due(pool: Any, *, limit: int, per_endpoint: int, lease_s: float) -> list[Claim]:
    if limit <= 0:
        return []
    claim_id = new_id("clm")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':claim'))")
        ids = [r["id"] for r in await conn.fetch(_CANDIDATES, limit, per_endpoint)]
        rows = await conn.fetch(_LEASE, ids, lease_s, claim_id) if ids else []
    rows = sorted(rows, key=lambda r: r["seq"])
    return [
        Claim(
            message_id=r["id"],
            claim_id=claim_id,
            subscription_id=r["subscription_id"],
            url=r["url"],
            secrets=(r["secret"],),
            body=r["body"].encode("utf-8"),
            attempt_number=r["attempts"] + 1,
            attempt_in_round=r["round_attempts"] + 1,
        )
        for r in rows
    ]


async def record_attempt(
    pool: Any, claim: Claim, result: AttemptResult, transition: Transition, attempted_at: datetime
) -> bool:
    """Store the attempt and the message's next state; False when the claim was lost meanwhile (its lease
    ran out and another claim took the message, or the message was resent or deleted)."""
    delivered = transition.status is MessageStatus.DELIVERED
    error = describe_failure(result)
    async with pool.acquire() as conn, conn.transaction():
        kept = await conn.fetchval(
            _FINISH,
            claim.message_id,
            claim.claim_id,
            transition.status.value,
            transition.retry_in_s,
            attempted_at,
            error,
        )
        await conn.execute(
            _ATTEMPT,
            claim.message_id,
            claim.subscription_id,
            claim.attempt_number,
            attempted_at,
            result.status_code,
            result.latency_ms,
            result.response_excerpt,
            None if result.error is None else str(result.error),
            result.error_detail,
            result.outcome.value,
        )
        await conn.execute(
            _ENDPOINT_HEALTH,
            claim.subscription_id,
            delivered,
            attempted_at,
            transition.disable_endpoint,
            f"{transition.reason}: {error}",
        )
    return kept is not None


async def release(pool: Any, claims: Sequence[Claim]) -> None:
    """Give unfinished claims back at once (a clean shutdown), instead of waiting for their leases."""
    if not claims:
        return
    await pool.execute(
        "UPDATE messages SET leased_until = NULL, next_attempt_at = now(), claim_id = NULL"
        " WHERE (id, claim_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
        [c.message_id for c in claims],
        [c.claim_id for c in claims],
    )


async def seconds_until_next_due(pool: Any) -> float | None:
    """How long until the next pending message falls due (None: nothing is waiting)."""
    value = await pool.fetchval(
        "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now())::float8 FROM messages"
        " WHERE status = 'pending' AND next_attempt_at > now()"
    )
    return None if value is None else float(value)
