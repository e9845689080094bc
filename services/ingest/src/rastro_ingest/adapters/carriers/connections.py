"""Postgres access for carrier connections (schema ``ingest``).

Credentials and the webhook secret are stored as given: ingest must present the credentials to the
carrier and recompute push signatures, so it needs them in clear. They are never logged and never
returned by the API after creation (the secret is shown once).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rastro_ingest.polling.schedule import PollPolicy

__all__ = ["Connection", "delete_connection", "fetch_connection", "fetch_connections", "insert_connection"]

_COLUMNS = (
    "id, tenant_id, carrier, name, base_url, credentials, webhook_secret, polling_enabled, poll_interval_s,"
    " delivered_poll_interval_s, delivered_poll_days, expire_after_days, batch_size, created_at"
)


@dataclass(frozen=True)
class Connection:
    id: str
    tenant_id: str
    carrier: str
    name: str | None
    base_url: str | None
    credentials: dict[str, Any]
    webhook_secret: str
    polling_enabled: bool
    poll_interval_s: int
    delivered_poll_interval_s: int
    delivered_poll_days: int
    expire_after_days: int
    batch_size: int
    created_at: datetime

    @property
    def policy(self) -> PollPolicy:
        return PollPolicy(
            interval=timedelta(seconds=self.poll_interval_s),
            delivered_interval=timedelta(seconds=self.delivered_poll_interval_s),
            delivered_days=self.delivered_poll_days,
            expire_after_days=self.expire_after_days,
        )

    def public(self) -> dict[str, Any]:
        """What the API shows: never the secret, only the names of the credentials."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "carrier": self.carrier,
            "name": self.name,
            "base_url": self.base_url,
            "credentials": sorted(self.credentials),
            "webhook_url": f"/v1/carriers/{self.carrier}/webhook?connection={self.id}",
            "polling": {
                "enabled": self.polling_enabled,
                "interval_s": self.poll_interval_s,
                "delivered_interval_s": self.delivered_poll_interval_s,
                "delivered_days": self.delivered_poll_days,
                "expire_after_days": self.expire_after_days,
                "batch_size": self.batch_size,
            },
            "created_at": self.created_at.isoformat(),
        }


def _connection(row: Any) -> Connection:
    values = dict(row)
    values["credentials"] = json.loads(values["credentials"])
    return Connection(**values)


async def insert_connection(conn: Any, values: dict[str, Any]) -> Connection:
    names = list(values)
    row = await conn.fetchrow(
        f"INSERT INTO carrier_connections({', '.join(names)})"
        f" VALUES ({', '.join(f'${i + 1}' for i in range(len(names)))}) RETURNING {_COLUMNS}",
        *[json.dumps(v) if k == "credentials" else v for k, v in values.items()],
    )
    return _connection(row)


async def fetch_connection(conn: Any, connection_id: str) -> Connection | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM carrier_connections WHERE id = $1", connection_id)
    return _connection(row) if row else None


async def fetch_connections(conn: Any, tenant_id: str | None) -> list[Connection]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM carrier_connections WHERE $1::text IS NULL OR tenant_id = $1"
        " ORDER BY created_at, id",
        tenant_id,
    )
    return [_connection(r) for r in rows]


async def delete_connection(conn: Any, connection_id: str, tenant_id: str | None) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM carrier_connections WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) RETURNING 1",
        connection_id,
        tenant_id,
    )
    return bool(deleted)
