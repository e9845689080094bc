"""The durable delivery queue in Postgres: claim due messages, record attempts, release claims.

A claim leases a message: ``leased_until`` and ``next_attempt_at`` move a lease into the future, so
if the claiming process dies mid-send the message simply falls due again when the lease runs out and
another (or the restarted) instance sends it — at least once, never lost. ``claim_id`` fences a
sender that outlived its lease: its late result updates nothing.

What may be claimed (one transaction under a transaction-scoped advisory lock, so that several
instances claiming at once still respect the caps; the work per claim is bounded by what can be
claimed, not by the backlog):

- ``pending``, due (``next_attempt_at <= now()``), and its subscription enabled and its circuit not open
  (``domain.endpoint_health``): a dead endpoint's messages are parked, not scanned, not attempted;
- no earlier ``pending`` message (by ``seq``) for the same subscription and ordering key (shipment):
  events of one shipment reach one endpoint in order, and a message waiting for a retry holds back
  the later messages of its shipment (only of its shipment) for that endpoint;
- at most ``per_endpoint`` leased messages per subscription, across every instance (one while the
  circuit is half-open: a single probe);
- no more than the subscription's rate limit allows (``domain.rate_limit``; its state moves on in the
  same transaction).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rastro_notification.adapters.endpoint_alerts import alert_endpoint_disabled
from rastro_notification.adapters.repository import new_id
from rastro_notification.domain.delivery import AttemptResult
from rastro_notification.domain.endpoint_health import (
    BreakerPolicy,
    EndpointHealth,
    HealthChange,
    after_endpoint_attempt,
)
from rastro_notification.domain.message_lifecycle import Transition, describe_failure
from rastro_notification.domain.rate_limit import allowance, next_tat

__all__ = ["Claim", "Recorded", "claim_due", "record_attempt", "release", "seconds_until_next_due"]

# Step 1, no locks: per open subscription, its due heads of (subscription, shipment) queues, up to the
# room it has beside the messages already in flight. The work is bounded by what can be claimed, not by
# the backlog: each subscription is an index scan (``messages_due_by_subscription``) that stops after
# ``cap - busy`` heads, "head" is one probe of ``messages_in_order`` for an earlier pending message of
# the shipment, and in-flight counts come from the leased rows only (``messages_leased``). Every
# subscription gets its share, whatever another one's backlog.
_CANDIDATES = """
WITH open_subs AS MATERIALIZED (
    SELECT id, CASE WHEN consecutive_failures >= $3 THEN 1 ELSE $2 END AS cap
    FROM subscriptions WHERE enabled AND (circuit_open_until IS NULL OR circuit_open_until <= now())
), busy AS MATERIALIZED (
    SELECT subscription_id, count(*) AS n FROM messages
    WHERE status = 'pending' AND leased_until > now() GROUP BY subscription_id
), heads AS (
    SELECT c.id, c.subscription_id, c.next_attempt_at, c.seq, o.cap, coalesce(b.n, 0) AS busy,
           row_number() OVER (PARTITION BY c.subscription_id ORDER BY c.next_attempt_at, c.seq) AS rank
    FROM open_subs o
    LEFT JOIN busy b ON b.subscription_id = o.id
    CROSS JOIN LATERAL (
        SELECT m.id, m.subscription_id, m.next_attempt_at, m.seq
        FROM messages m
        WHERE m.status = 'pending' AND m.subscription_id = o.id AND m.next_attempt_at <= now()
          AND NOT EXISTS (
              SELECT 1 FROM messages e
              WHERE e.status = 'pending' AND e.subscription_id = m.subscription_id
                AND e.ordering_key = m.ordering_key AND e.seq < m.seq
          )
        ORDER BY m.next_attempt_at, m.seq
        LIMIT greatest(o.cap - coalesce(b.n, 0), 0)
    ) c
)
SELECT h.id FROM heads h
LEFT JOIN unnest($4::text[], $5::int[]) AS r(sub, allowed) ON r.sub = h.subscription_id
WHERE h.busy + h.rank <= h.cap AND (r.allowed IS NULL OR h.rank <= r.allowed)
ORDER BY h.next_attempt_at, h.seq LIMIT $1
"""

_RATE_LIMITED = """
SELECT id, rate_limit_per_s, rate_tat, now() AS now FROM subscriptions
WHERE enabled AND rate_limit_per_s IS NOT NULL
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
RETURNING m.id, m.subscription_id, m.body, m.attempts, m.round_attempts, s.url, s.secret, m.seq, s.headers,
          CASE WHEN s.previous_secret_expires_at > now() THEN s.previous_secret END AS previous_secret
"""

_HEALTH = """
SELECT enabled, failing_since, consecutive_failures, circuit_open_until, disabled_reason, tenant_id, url
FROM subscriptions WHERE id = $1 FOR UPDATE
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


@dataclass(frozen=True)
class Claim:
    message_id: str
    claim_id: str
    subscription_id: str
    url: str
    secrets: tuple[str, ...]  # the current secret, and the previous one during a rotation's overlap
    headers: dict[str, str]
    body: bytes
    attempt_number: int  # among every attempt of the message
    attempt_in_round: int  # since creation or the last resend: drives the retry schedule


async def claim_due(
    pool: Any, *, limit: int, per_endpoint: int, lease_s: float, half_open_after: int = 2**31 - 1
) -> list[Claim]:
    """Lease up to ``limit`` due messages. ``half_open_after``: consecutive failures from which an
    endpoint whose circuit has closed again gets one delivery at a time (the breaker's threshold)."""
    if limit <= 0:
        return []
    claim_id = new_id("clm")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || ':claim'))")
        limited = {r["id"]: r for r in await conn.fetch(_RATE_LIMITED)}
        allowed = {
            sub: allowance(r["rate_tat"], r["now"], r["rate_limit_per_s"]) for sub, r in limited.items()
        }
        ids = [
            r["id"]
            for r in await conn.fetch(
                _CANDIDATES, limit, per_endpoint, half_open_after, list(allowed), list(allowed.values())
            )
        ]
        rows = await conn.fetch(_LEASE, ids, lease_s, claim_id) if ids else []
        await _advance_rate_limits(conn, limited, Counter(r["subscription_id"] for r in rows))
    rows = sorted(rows, key=lambda r: r["seq"])
    return [
        Claim(
            message_id=r["id"],
            claim_id=claim_id,
            subscription_id=r["subscription_id"],
            url=r["url"],
            secrets=(r["secret"],) if r["previous_secret"] is None else (r["secret"], r["previous_secret"]),
            headers=dict(json.loads(r["headers"])),
            body=r["body"].encode("utf-8"),
            attempt_number=r["attempts"] + 1,
            attempt_in_round=r["round_attempts"] + 1,
        )
        for r in rows
    ]


async def _advance_rate_limits(conn: Any, limited: dict[str, Any], sent: Counter[str]) -> None:
    moved = [
        (sub, next_tat(limited[sub]["rate_tat"], limited[sub]["now"], limited[sub]["rate_limit_per_s"], n))
        for sub, n in sent.items()
        if sub in limited
    ]
    if moved:
        await conn.executemany("UPDATE subscriptions SET rate_tat = $2 WHERE id = $1", moved)


@dataclass(frozen=True)
class Recorded:
    kept: bool  # False: the claim was lost meanwhile (lease ran out, message resent or deleted)
    health: HealthChange | None  # None when the subscription is gone


async def record_attempt(
    pool: Any,
    claim: Claim,
    result: AttemptResult,
    transition: Transition,
    attempted_at: datetime,
    breaker: BreakerPolicy,
) -> Recorded:
    """Store the attempt, the message's next state and the endpoint's health, in one transaction; a
    subscription this attempt disabled gets its owner alert (event and e-mail) in the same one."""
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
        change = await _update_health(conn, claim.subscription_id, result, attempted_at, breaker, error)
    return Recorded(kept is not None, change)


async def _update_health(
    conn: Any,
    sub_id: str,
    result: AttemptResult,
    attempted_at: datetime,
    breaker: BreakerPolicy,
    error: str | None,
) -> HealthChange | None:
    row = await conn.fetchrow(_HEALTH, sub_id)
    if row is None:
        return None
    health = EndpointHealth(
        enabled=row["enabled"],
        failing_since=row["failing_since"],
        consecutive_failures=row["consecutive_failures"],
        circuit_open_until=row["circuit_open_until"],
        disabled_reason=row["disabled_reason"],
    )
    change = after_endpoint_attempt(health, result.outcome, attempted_at, breaker)
    new = change.health
    reason = f"{new.disabled_reason}: {error}" if change.disabled_now else new.disabled_reason
    await conn.execute(
        "UPDATE subscriptions SET enabled = $2, failing_since = $3, consecutive_failures = $4,"
        " circuit_open_until = $5, disabled_reason = $6,"
        " disabled_at = CASE WHEN $7 THEN now() ELSE disabled_at END,"
        " updated_at = CASE WHEN $7 THEN now() ELSE updated_at END WHERE id = $1",
        sub_id,
        new.enabled,
        new.failing_since,
        new.consecutive_failures,
        new.circuit_open_until,
        reason,
        change.disabled_now,
    )
    if change.disabled_now:
        await alert_endpoint_disabled(
            conn,
            sub_id=sub_id,
            tenant_id=row["tenant_id"],
            url=row["url"],
            reason=new.disabled_reason or "",
            detail=reason or "",
            failing_since=new.failing_since,
            disabled_at=attempted_at,
        )
    return change


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
    """How long until the next pending message falls due or a parked endpoint's circuit half-opens
    (None: nothing is waiting)."""
    value = await pool.fetchval(
        "SELECT EXTRACT(EPOCH FROM least("
        " (SELECT min(next_attempt_at) FROM messages WHERE status = 'pending' AND next_attempt_at > now()),"
        " (SELECT min(circuit_open_until) FROM subscriptions WHERE enabled AND circuit_open_until > now())"
        ") - now())::float8"
    )
    return None if value is None else float(value)
