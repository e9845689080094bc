"""The dev stack's keys: an operator (admin) key kept in ``.rastro/admin.key``, and a demo tenant key
created through ingest's admin API on every start (ingest keeps only hashes, so a key is shown once).
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path

import httpx

__all__ = [
    "DEMO_KEY_SCOPES",
    "DEMO_TENANT",
    "DemoTenantError",
    "create_demo_key",
    "load_or_create_admin_key",
    "write_env_file",
]

DEMO_TENANT = {"id": "demo", "name": "Demo shop"}
DEMO_KEY_SCOPES = [
    "events:write",
    "shipments:read",
    "mappings:manage",
    "subscriptions:manage",
    "dead-letters:manage",
]
_ALPHABET = string.ascii_letters + string.digits  # no '-' or '_': a double-click selects the whole key


class DemoTenantError(RuntimeError):
    """Ingest refused to create the demo tenant or its key."""


def load_or_create_admin_key(path: Path) -> str:
    """The key in ``path``; a new ``rk_admin_…`` key, written there (mode 600), the first time."""
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = "rk_admin_" + "".join(secrets.choice(_ALPHABET) for _ in range(32))
    _write_private(path, key + "\n")
    return key


async def create_demo_key(client: httpx.AsyncClient, ingest_url: str, admin_key: str) -> str:
    """Create tenant ``demo`` (an existing one is fine) and a sandbox key for it; the key's secret."""
    auth = {"Authorization": f"Bearer {admin_key}"}
    tenant = await client.post(f"{ingest_url}/v1/tenants", json=DEMO_TENANT, headers=auth)
    if tenant.status_code not in (201, 409):
        raise DemoTenantError(_describe("POST /v1/tenants", tenant))
    created = await client.post(
        f"{ingest_url}/v1/tenants/{DEMO_TENANT['id']}/keys",
        json={"name": "make-run", "environment": "sandbox", "scopes": DEMO_KEY_SCOPES},
        headers=auth,
    )
    if created.status_code != 201:
        raise DemoTenantError(_describe(f"POST /v1/tenants/{DEMO_TENANT['id']}/keys", created))
    try:
        key = created.json()["key"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DemoTenantError(f"the new key's answer has no 'key': {created.text[:300]}") from exc
    if not isinstance(key, str) or not key:
        raise DemoTenantError(f"the new key's answer has no 'key': {created.text[:300]}")
    return key


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """``NAME=value`` lines, readable by ``set -a; . file`` and by docker's ``--env-file``."""
    _write_private(path, "".join(f"{name}={value}\n" for name, value in values.items()))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, 0o600)


def _describe(what: str, response: httpx.Response) -> str:
    return f"{what} answered {response.status_code}: {response.text[:300]}"
