"""Per-tenant retention (issue 11, item 3; docs/privacy.md "Retention per tenant").

Each service keeps a default retention per *category* of data (its settings, documented in its README);
a tenant may override a category with its own number of days (``retention_policies``, kit migration
0008, written through ``PUT /v1/retention/<area>``). A purge rule turns (category, default) into
*cutoffs*: one per tenant with an override (``tenant_id = $2``, its days) and one for everyone else
(``tenant_id <> ALL($2)``, the default days), and runs its usual batched statement once per cutoff. So a
statement's plan and batching are what they were, with one more predicate, and a round costs one extra
pass per override — a handful of tenants, not one pass per tenant.

Purge statements follow ``delete_in_batches``: ``$1`` the interval, ``$2`` the tenant (or the tenants
excluded), ``$3`` the batch size, and ``{tenant}`` where the predicate goes: ``AND s.tenant_id {tenant}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rastro_kit.housekeeping import BATCH, delete_in_batches

__all__ = [
    "CATEGORIES",
    "MAX_DAYS",
    "MIN_DAYS",
    "Cutoff",
    "Policy",
    "add_counts",
    "cutoffs",
    "delete_per_tenant",
    "overrides_of",
    "policies_of",
    "set_policies",
    "tenant_cutoffs",
]

# What a tenant can set, and the service(s) that apply each (docs/privacy.md has the table).
CATEGORIES = ("shipments", "delivery_log", "recipients", "dead_letters", "idempotency_keys", "imports")
MIN_DAYS, MAX_DAYS = 1, 3650


@dataclass(frozen=True)
class Cutoff:
    """One pass of a purge: ``tenant`` with its override, or (``tenant`` None) every tenant not in
    ``others`` with the default."""

    days: float
    tenant: str | None = None
    others: tuple[str, ...] = ()

    @property
    def older_than(self) -> timedelta:
        return timedelta(days=self.days)

    def before(self, now: datetime) -> datetime:
        return now - self.older_than

    @property
    def arg(self) -> str | list[str]:
        """The value of ``$2``."""
        return self.tenant if self.tenant is not None else list(self.others)

    def scope(self, sql: str) -> str:
        """``sql`` with its ``{tenant}`` placeholder filled in for this pass."""
        predicate = "= $2::text" if self.tenant is not None else "<> ALL($2::text[])"
        return sql.replace("{tenant}", predicate)


def cutoffs(default_days: float, overrides: Mapping[str, int]) -> list[Cutoff]:
    """The passes of one purge: each override, then the default for everyone else."""
    named = sorted(overrides)
    return [*(Cutoff(overrides[t], t) for t in named), Cutoff(default_days, None, tuple(named))]


async def overrides_of(conn: Any, category: str) -> dict[str, int]:
    """Every tenant's override of ``category``: ``{tenant: days}``."""
    rows = await conn.fetch("SELECT tenant_id, days FROM retention_policies WHERE category = $1", category)
    return {r["tenant_id"]: int(r["days"]) for r in rows}


async def tenant_cutoffs(pool: Any, category: str, default_days: float) -> list[Cutoff]:
    return cutoffs(default_days, await overrides_of(pool, category))


def add_counts(totals: dict[str, int], counts: Mapping[str, int]) -> dict[str, int]:
    for table, count in counts.items():
        totals[table] = totals.get(table, 0) + count
    return totals


async def delete_per_tenant(
    pool: Any, sql: str, category: str, default_days: float, *, batch: int = BATCH, pause_s: float = 0.0
) -> dict[str, int]:
    """Run ``sql`` (see the module docstring) in batches once per cutoff of ``category``; rows per table."""
    totals: dict[str, int] = {}
    for cut in await tenant_cutoffs(pool, category, default_days):
        counts = await delete_in_batches(
            pool, cut.scope(sql), cut.older_than, cut.arg, batch=batch, pause_s=pause_s
        )
        add_counts(totals, counts)
    return totals


@dataclass(frozen=True)
class Policy:
    """A tenant's effective retention of one category in one service."""

    category: str
    days: float
    default_days: float
    override: bool
    updated_at: datetime | None = None
    updated_by: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "days": self.days,
            "default_days": self.default_days,
            "source": "override" if self.override else "default",
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }


async def policies_of(conn: Any, tenant: str, defaults: Mapping[str, float]) -> list[Policy]:
    """The tenant's policy for each category of ``defaults`` (the ones this service applies)."""
    rows = await conn.fetch(
        "SELECT category, days, updated_at, updated_by FROM retention_policies"
        " WHERE tenant_id = $1 AND category = ANY($2::text[])",
        tenant,
        list(defaults),
    )
    found = {r["category"]: r for r in rows}
    out = []
    for category, default in defaults.items():
        row = found.get(category)
        if row is None:
            out.append(Policy(category, default, default, False))
        else:
            out.append(Policy(category, row["days"], default, True, row["updated_at"], row["updated_by"]))
    return out


async def set_policies(
    conn: Any, tenant: str, days: Mapping[str, int | None], actor: str
) -> dict[str, dict[str, int | None]]:
    """Set (or, with None, remove) the tenant's overrides; ``{category: {"before", "after"}}`` of what
    changed. Run it in the transaction that audits the change."""
    changes: dict[str, dict[str, int | None]] = {}
    for category, value in sorted(days.items()):
        before = await conn.fetchval(
            "SELECT days FROM retention_policies WHERE tenant_id = $1 AND category = $2 FOR UPDATE",
            tenant,
            category,
        )
        if value is None:
            await conn.execute(
                "DELETE FROM retention_policies WHERE tenant_id = $1 AND category = $2", tenant, category
            )
        else:
            await conn.execute(
                "INSERT INTO retention_policies (tenant_id, category, days, updated_by)"
                " VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (tenant_id, category) DO UPDATE SET days = EXCLUDED.days,"
                " updated_at = now(), updated_by = EXCLUDED.updated_by",
                tenant,
                category,
                value,
                actor,
            )
        if before != value:
            changes[category] = {"before": before, "after": value}
    return changes
