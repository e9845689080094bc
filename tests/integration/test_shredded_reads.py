"""After a tenant is crypto-shredded its sealed values never open again (docs/privacy.md). The services
must read on: a dead letter lists as if its payload were purged, a recipient reaches nobody, a pending
notice fails once instead of crashing the notice dispatcher on every lease — and another tenant's data
is untouched. Real Postgres, each service's own migrated schema; no broker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rastro_dlq_replay.adapters import repository as dlq_repo
from rastro_dlq_replay.domain.dead_letter import DlqRecord, Status, parse_dead_letter
from rastro_kit.personal_data import KeyDestroyed, destroy_tenant_keys, open_value, seal_value
from rastro_kit.testing import migrated_schema
from rastro_notification.adapters import customer_store, notice_store

pytestmark = pytest.mark.integration


@pytest.fixture
async def notification(database_url: str) -> AsyncIterator[Any]:
    async with migrated_schema(database_url, "shrn", ("rastro_notification.migrations",)) as pool:
        yield pool


@pytest.fixture
async def dlq(database_url: str) -> AsyncIterator[Any]:
    async with migrated_schema(database_url, "shrd", ("rastro_dlq_replay.migrations",)) as pool:
        yield pool


async def test_a_destroyed_key_raises_unless_asked_to_read_it_as_erased(notification: Any) -> None:
    async with notification.acquire() as conn:
        sealed = await seal_value(conn, "gone", "recipients.email", "ana@example.com")
        await destroy_tenant_keys(conn, "gone")
        with pytest.raises(KeyDestroyed):
            await open_value(conn, "gone", "recipients.email", sealed)
        assert await open_value(conn, "gone", "recipients.email", sealed, shredded_as_none=True) is None


async def test_a_shredded_recipient_reaches_nobody_and_its_notice_fails_once(notification: Any) -> None:
    async with notification.acquire() as conn:
        for tenant in ("gone", "kept"):
            await customer_store.put_recipient(
                conn, tenant, "AA123456785BR", {"name": "Ana", "email": "ana@example.com", "locale": "pt-BR"}
            )
            await notice_store.queue_notice(
                conn,
                tenant_id=tenant,
                kind="customer",
                tracking_number="AA123456785BR",
                milestone="delivered",
                dedupe_key=f"{tenant}-delivered",
                channel="email",
                address="ana@example.com",
                locale="pt-BR",
                context={"recipient_name": "Ana"},
            )
        await destroy_tenant_keys(conn, "gone")
        gone = await customer_store.get_recipient(conn, "gone", "AA123456785BR")
        kept = await customer_store.get_recipient(conn, "kept", "AA123456785BR")
    assert gone is not None and (gone["name"], gone["email"], gone["phone"]) == (None, None, None)
    assert kept is not None and kept["email"] == "ana@example.com"

    claims = await notice_store.claim_notices(notification, limit=10, lease_s=30)
    assert [c.address for c in claims] == ["ana@example.com"]  # only the other tenant's
    rows = await notification.fetch("SELECT tenant_id, status, last_error FROM notices ORDER BY tenant_id")
    assert [(r["tenant_id"], r["status"], r["last_error"]) for r in rows] == [
        ("gone", "failed", "recipient data shredded"),
        ("kept", "pending", None),
    ]


async def test_a_shredded_tenants_dead_letter_lists_without_its_payload(dlq: Any) -> None:
    ids = {}
    async with dlq.acquire() as conn:
        for n, tenant in enumerate(("gone", "kept")):
            value = json.dumps({"id": f"evt{n}", "tenantid": tenant, "data": {"email": "ana@example.com"}})
            record = DlqRecord("rastro.normalization.dlq", 0, n, 1_764_000_000_000, None, value.encode(), ())
            ids[tenant] = f"dl_{tenant}"
            assert await dlq_repo.insert_dead_letter(conn, parse_dead_letter(record), ids[tenant])
        await destroy_tenant_keys(conn, "gone")
        gone = await dlq_repo.fetch_dead_letter(conn, ids["gone"], None)
        kept = await dlq_repo.fetch_dead_letter(conn, ids["kept"], None)
    assert gone is not None and gone.value is None and gone.tenant == "gone"
    assert gone.status is Status.PURGED and kept is not None and kept.status is Status.NEW  # never replayed
    assert kept is not None and kept.value is not None and b"ana@example.com" in kept.value
