"""Postgres access for customer notifications: per-tenant settings, template overrides, shipment
recipients and opt-outs. Every function takes the tenant it acts for.

Recipients are personal data: stored sealed (``rastro_kit.personal_data``) with blind indexes of their
e-mail, phone and document, never logged, shown masked in notice logs, and deleted by the purge job once
untouched for ``recipient_retention_days``. Opt-outs keep only a keyed
hash of the address (``domain.recipients.opt_out_hash``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from rastro_kit.personal_data import blind_index, open_text, seal_value
from rastro_notification.adapters.repository import iso
from rastro_notification.domain.recipients import opt_out_hash

__all__ = [
    "SETTINGS_FIELDS",
    "delete_recipient",
    "delete_template",
    "get_recipient",
    "get_settings",
    "get_template",
    "opted_out",
    "put_recipient",
    "put_settings",
    "put_template",
    "remember_eta",
    "set_opt_out",
    "templates_of",
]

SETTINGS_FIELDS = (
    "time_zone",
    "quiet_start",
    "quiet_end",
    "default_locale",
    "alert_email",
    "tracking_url",
    "messaging_url",
    "messaging_secret",
)
_DEFAULTS: dict[str, Any] = {
    "time_zone": "America/Sao_Paulo",
    "quiet_start": None,
    "quiet_end": None,
    "default_locale": "pt-BR",
    "alert_email": None,
    "tracking_url": None,
    "messaging_url": None,
    "messaging_secret": None,
}
_RECIPIENT = "tenant_id, tracking_number, name, email, phone, locale, created_at, updated_at"
_SEALED = ("name", "email", "phone")  # encrypted at rest (docs/privacy.md); the document only indexed


async def get_settings(conn: Any, tenant_id: str) -> dict[str, Any]:
    """The tenant's settings, defaults filled in."""
    row = await conn.fetchrow(
        f"SELECT {', '.join(SETTINGS_FIELDS)} FROM notice_settings WHERE tenant_id = $1", tenant_id
    )
    return {**_DEFAULTS, **(dict(row) if row else {})}


async def put_settings(conn: Any, tenant_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the tenant's settings (a field left out goes back to its default)."""
    merged = {**_DEFAULTS, **values}
    cols = ", ".join(SETTINGS_FIELDS)
    params = ", ".join(f"${i}" for i in range(2, len(SETTINGS_FIELDS) + 2))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in SETTINGS_FIELDS)
    await conn.execute(
        f"INSERT INTO notice_settings (tenant_id, {cols}) VALUES ($1, {params})"
        f" ON CONFLICT (tenant_id) DO UPDATE SET {updates}, updated_at = now()",
        tenant_id,
        *(merged[c] for c in SETTINGS_FIELDS),
    )
    return await get_settings(conn, tenant_id)


async def templates_of(conn: Any, tenant_id: str) -> dict[tuple[str, str], dict[str, str]]:
    rows = await conn.fetch(
        "SELECT milestone, locale, subject, body, short FROM notice_templates WHERE tenant_id = $1", tenant_id
    )
    return {(r["milestone"], r["locale"]): _parts(r) for r in rows}


async def get_template(conn: Any, tenant_id: str, milestone: str, locale: str) -> dict[str, str] | None:
    row = await conn.fetchrow(
        "SELECT subject, body, short FROM notice_templates WHERE tenant_id = $1 AND milestone = $2"
        " AND locale = $3",
        tenant_id,
        milestone,
        locale,
    )
    return _parts(row) if row else None


def _parts(row: Mapping[str, Any]) -> dict[str, str]:
    return {"subject": row["subject"], "body": row["body"], "short": row["short"]}


async def put_template(
    conn: Any, tenant_id: str, milestone: str, locale: str, parts: Mapping[str, str]
) -> None:
    await conn.execute(
        "INSERT INTO notice_templates (tenant_id, milestone, locale, subject, body, short)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, milestone, locale) DO UPDATE"
        " SET subject = EXCLUDED.subject, body = EXCLUDED.body, short = EXCLUDED.short, updated_at = now()",
        tenant_id,
        milestone,
        locale,
        parts["subject"],
        parts["body"],
        parts["short"],
    )


async def delete_template(conn: Any, tenant_id: str, milestone: str, locale: str) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM notice_templates WHERE tenant_id = $1 AND milestone = $2 AND locale = $3 RETURNING 1",
        tenant_id,
        milestone,
        locale,
    )
    return deleted is not None


async def put_recipient(
    conn: Any,
    tenant_id: str,
    tracking_number: str,
    values: Mapping[str, str | None],
    *,
    source: str = "api",
) -> dict[str, Any] | None:
    """Register (or replace) a shipment's recipient, sealed. ``source="order"`` (a recipient carried by
    an order event) never replaces one registered through the API; then None is returned."""
    sealed = {k: await seal_value(conn, tenant_id, f"recipients.{k}", values.get(k)) for k in _SEALED}
    indexes = [
        await _index(conn, tenant_id, kind, values.get(kind)) for kind in ("email", "phone", "document")
    ]
    keep_api = " WHERE recipients.source = 'order'" if source == "order" else ""
    row = await conn.fetchrow(
        "INSERT INTO recipients (tenant_id, tracking_number, name, email, phone, locale, email_index,"
        " phone_index, document_index, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (tenant_id, tracking_number) DO UPDATE"
        " SET name = EXCLUDED.name, email = EXCLUDED.email, phone = EXCLUDED.phone,"
        " locale = EXCLUDED.locale, email_index = EXCLUDED.email_index, phone_index = EXCLUDED.phone_index,"
        " document_index = EXCLUDED.document_index, source = EXCLUDED.source, updated_at = now()"
        f"{keep_api} RETURNING {_RECIPIENT}",
        tenant_id,
        tracking_number,
        sealed["name"],
        sealed["email"],
        sealed["phone"],
        values.get("locale"),
        *indexes,
        source,
    )
    return None if row is None else {**_recipient(row), **{k: values.get(k) for k in _SEALED}}


async def _index(conn: Any, tenant_id: str, kind: str, value: str | None) -> str | None:
    return await blind_index(conn, tenant_id, kind, value) if value else None


async def shipments_with_recipient(conn: Any, shipments: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (tenant, tracking number) pairs have a recipient: one query for a whole batch."""
    if not shipments:
        return set()
    rows = await conn.fetch(
        "SELECT r.tenant_id, r.tracking_number FROM recipients r"
        " JOIN unnest($1::text[], $2::text[]) AS s(tenant_id, tracking_number)"
        " ON r.tenant_id = s.tenant_id AND r.tracking_number = s.tracking_number",
        [t for t, _ in shipments],
        [n for _, n in shipments],
    )
    return {(r["tenant_id"], r["tracking_number"]) for r in rows}


async def get_recipient(conn: Any, tenant_id: str, tracking_number: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_RECIPIENT}, last_expected_date FROM recipients"
        " WHERE tenant_id = $1 AND tracking_number = $2",
        tenant_id,
        tracking_number,
    )
    if row is None:
        return None
    # A shredded tenant's recipient opens as nobody (no name, e-mail or phone): no notice goes out.
    opened = {
        k: await open_text(conn, tenant_id, f"recipients.{k}", row[k], shredded_as_none=True) for k in _SEALED
    }
    return {**_recipient(row), **opened, "last_expected_date": row["last_expected_date"]}


def _recipient(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **{k: row[k] for k in ("tracking_number", "name", "email", "phone", "locale")},
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


async def delete_recipient(conn: Any, tenant_id: str, tracking_number: str) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM recipients WHERE tenant_id = $1 AND tracking_number = $2 RETURNING 1",
        tenant_id,
        tracking_number,
    )
    return deleted is not None


async def remember_eta(conn: Any, tenant_id: str, tracking_number: str, expected: date) -> None:
    await conn.execute(
        "UPDATE recipients SET last_expected_date = $3 WHERE tenant_id = $1 AND tracking_number = $2",
        tenant_id,
        tracking_number,
        expected,
    )


async def set_opt_out(conn: Any, tenant_id: str, address: str, opted_out: bool) -> None:
    digest = opt_out_hash(tenant_id, address)
    if opted_out:
        await conn.execute(
            "INSERT INTO opt_outs (tenant_id, address_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            tenant_id,
            digest,
        )
    else:
        await conn.execute(
            "DELETE FROM opt_outs WHERE tenant_id = $1 AND address_hash = $2", tenant_id, digest
        )


async def opted_out(conn: Any, tenant_id: str, addresses: Sequence[str]) -> bool:
    """Whether any of the addresses opted out."""
    hashes = [opt_out_hash(tenant_id, a) for a in addresses]
    found = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM opt_outs WHERE tenant_id = $1 AND address_hash = ANY($2::text[]))",
        tenant_id,
        hashes,
    )
    return bool(found)
