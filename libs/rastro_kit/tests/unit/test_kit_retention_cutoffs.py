"""Per-tenant cutoffs (rastro_kit.retention): one pass per override, one for everyone else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rastro_kit.retention import Cutoff, cutoffs

SQL = "DELETE FROM t WHERE at < now() - $1::interval AND tenant_id {tenant} LIMIT $3"


def test_each_override_gets_its_own_pass_and_the_default_excludes_them() -> None:
    passes = cutoffs(365, {"zeta": 30, "acme": 7})
    assert passes == [Cutoff(7, "acme"), Cutoff(30, "zeta"), Cutoff(365, None, ("acme", "zeta"))]
    assert [p.arg for p in passes] == ["acme", "zeta", ["acme", "zeta"]]
    assert passes[0].older_than == timedelta(days=7)


def test_without_overrides_one_pass_covers_every_tenant() -> None:
    (only,) = cutoffs(0.5, {})
    assert only.tenant is None and only.arg == [] and only.older_than == timedelta(hours=12)


def test_the_placeholder_becomes_an_equality_or_an_exclusion() -> None:
    assert Cutoff(7, "acme").scope(SQL).endswith("tenant_id = $2::text LIMIT $3")
    assert Cutoff(365).scope(SQL).endswith("tenant_id <> ALL($2::text[]) LIMIT $3")
    now = datetime(2026, 1, 31, tzinfo=UTC)
    assert Cutoff(30, "acme").before(now) == datetime(2026, 1, 1, tzinfo=UTC)
