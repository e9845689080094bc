"""Data-subject requests for what notification holds about a person (docs/privacy.md): shipment
recipients, the customer notices queued and sent to them, and their opt-outs.

Rows are found by blind index (``recipients.email_index`` / ``phone_index`` / ``document_index``,
``notices.address_index``) and by the tracking numbers of the recipients found. Erasure deletes them;
webhook messages and attempts carry no personal data (tracking and ETA events only) and stay.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from rastro_kit.personal_data import EncryptedColumn, open_text
from rastro_kit.privacy_api import DataSubject, privacy_router
from rastro_notification.adapters import customer_store
from rastro_notification.adapters.repository import iso
from rastro_notification.domain.recipients import (
    InvalidAddress,
    normalize_email,
    normalize_phone,
    opt_out_hash,
)

__all__ = ["COLUMNS", "erase", "export", "router"]

COLUMNS = (
    EncryptedColumn("recipients", "name", key="ctid"),
    EncryptedColumn("recipients", "email", key="ctid"),
    EncryptedColumn("recipients", "phone", key="ctid"),
    EncryptedColumn("notices", "address", key="id"),
)

_RECIPIENTS = (
    "SELECT tracking_number FROM recipients WHERE tenant_id = $1 AND (email_index = ANY($2::text[])"
    " OR phone_index = ANY($2::text[]) OR document_index = ANY($2::text[]))"
)
_NOTICES = (
    "FROM notices WHERE tenant_id = $1 AND kind = 'customer'"
    " AND (address_index = ANY($2::text[]) OR tracking_number = ANY($3::text[]))"
)


async def _tracking_numbers(conn: Any, who: DataSubject) -> list[str]:
    return [r["tracking_number"] for r in await conn.fetch(_RECIPIENTS, who.tenant_id, list(who.indexes))]


async def export(conn: Any, who: DataSubject) -> dict[str, Any]:
    numbers = await _tracking_numbers(conn, who)
    recipients = []
    for number in numbers:
        found = await customer_store.get_recipient(conn, who.tenant_id, number)
        if found is not None:
            found["last_expected_date"] = iso(found["last_expected_date"])
            recipients.append(found)
    rows = await conn.fetch(
        "SELECT id, tracking_number, milestone, channel, address, locale, context, status, created_at,"
        f" sent_at {_NOTICES} ORDER BY id",
        who.tenant_id,
        list(who.indexes),
        numbers,
    )
    notices = []
    for r in rows:
        context = json.loads(r["context"])
        name = context.get("recipient_name")
        notices.append(
            {
                **{k: r[k] for k in ("id", "tracking_number", "milestone", "channel", "locale", "status")},
                "address": await open_text(conn, who.tenant_id, "notices.address", r["address"]),
                "recipient_name": await open_text(conn, who.tenant_id, "notices.recipient_name", name),
                "created_at": iso(r["created_at"]),
                "sent_at": iso(r["sent_at"]),
            }
        )
    opted_out = await conn.fetchval(
        "SELECT count(*) FROM opt_outs WHERE tenant_id = $1 AND address_hash = ANY($2::text[])",
        who.tenant_id,
        _opt_out_hashes(who),
    )
    return {"recipients": recipients, "notices": notices, "opted_out": bool(opted_out)}


async def erase(conn: Any, who: DataSubject) -> dict[str, int]:
    numbers = await _tracking_numbers(conn, who)
    notices = await conn.fetchval(
        f"WITH gone AS (DELETE {_NOTICES} RETURNING 1) SELECT count(*) FROM gone",
        who.tenant_id,
        list(who.indexes),
        numbers,
    )
    recipients = await conn.fetchval(
        "WITH gone AS (DELETE FROM recipients WHERE tenant_id = $1 AND tracking_number = ANY($2::text[])"
        " RETURNING 1) SELECT count(*) FROM gone",
        who.tenant_id,
        numbers,
    )
    opt_outs = await conn.fetchval(
        "WITH gone AS (DELETE FROM opt_outs WHERE tenant_id = $1 AND address_hash = ANY($2::text[])"
        " RETURNING 1) SELECT count(*) FROM gone",
        who.tenant_id,
        _opt_out_hashes(who),
    )
    return {"recipients": int(recipients), "notices": int(notices), "opt_outs": int(opt_outs)}


def _opt_out_hashes(who: DataSubject) -> list[str]:
    hashes = []
    for value, normalize in ((who.email, normalize_email), (who.phone, normalize_phone)):
        if value:
            try:
                hashes.append(opt_out_hash(who.tenant_id, normalize(value)))
            except InvalidAddress:
                continue
    return hashes


router: APIRouter = privacy_router("notification", "notification", export, erase, COLUMNS)
