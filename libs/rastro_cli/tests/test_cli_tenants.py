"""``rastro tenants`` and ``rastro keys`` against a real ingest served on a port (real broker, Postgres)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from typer.testing import CliRunner, Result

from rastro_cli.main import app
from rastro_ingest.app import build_app
from rastro_ingest.settings import IngestSettings
from rastro_kit.testing import serve_app

pytestmark = pytest.mark.integration
ADMIN = "rk_admin_" + secrets.token_hex(8)


@pytest.fixture(scope="module")
async def ingest(
    kafka_bootstrap: str, database_url: str, kafka_idempotence: bool, topics: list[str]
) -> AsyncIterator[str]:
    settings = IngestSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        RASTRO_KAFKA_IDEMPOTENCE=kafka_idempotence,
        RASTRO_ADMIN_API_KEY=ADMIN,
    )
    async with serve_app(build_app(settings)) as url:
        yield url


async def rastro(ingest: str, *args: str, api_key: str = ADMIN) -> Result:
    """The CLI is synchronous: run it in a thread so the app keeps serving on this loop."""
    env = {"RASTRO_BASE_URL": ingest, "RASTRO_ADMIN_API_KEY": api_key, "COLUMNS": "250"}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_tenant_and_key_lifecycle(ingest: str) -> None:
    tenant = f"cli{secrets.token_hex(4)}"
    r = await rastro(ingest, "tenants", "create", tenant, "--name", "CLI shop")
    assert r.exit_code == 0, r.output
    assert tenant in (await rastro(ingest, "tenants", "list")).output

    r = await rastro(
        ingest, "keys", "create", tenant, "--name", "erp", "--environment", "sandbox",
        "--scope", "events:write", "--scope", "shipments:read",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "shown only this once" in r.output
    key = next(line.strip() for line in r.output.splitlines() if line.strip().startswith("rk_test_"))
    listed = await rastro(ingest, "keys", "list", tenant)
    assert "erp" in listed.output and f"…{key[-4:]}" in listed.output and key not in listed.output
    key_id = next(w for w in listed.output.split() if w.startswith("key_"))
    me = await rastro(ingest, "keys", "whoami", api_key=key)
    assert me.exit_code == 0 and f"{key_id} " in me.output and tenant in me.output, me.output
    assert "sandbox" in me.output and "events:write shipments:read" in me.output and key not in me.output

    async with httpx.AsyncClient(base_url=ingest) as client:
        auth = {"Authorization": f"Bearer {key}"}
        r2 = await client.get(f"/v1/tenants/{tenant}/keys", headers=auth)
        assert r2.status_code == 403  # the key holds no admin scope: it authenticates, nothing more

        r = await rastro(ingest, "keys", "rotate", tenant, key_id, "--overlap-hours", "0", "-q")
        assert r.exit_code == 0, r.output
        new_key = r.output.strip()
        assert new_key.startswith("rk_test_") and new_key != key
        assert (await client.get("/v1/tenants", headers=auth)).status_code == 401  # no overlap: gone

        new_id = next(
            w
            for w in (await rastro(ingest, "keys", "list", tenant)).output.split()
            if w.startswith("key_") and w != key_id
        )
        assert (await rastro(ingest, "keys", "revoke", tenant, new_id)).exit_code == 0
        r2 = await client.get("/v1/tenants", headers={"Authorization": f"Bearer {new_key}"})
        assert r2.status_code == 401
    assert "revoked" in (await rastro(ingest, "keys", "list", tenant)).output


async def test_errors_are_readable_and_exit_non_zero(ingest: str) -> None:
    r = await rastro(ingest, "tenants", "create", "Bad Id!", "--name", "x")
    assert r.exit_code == 1 and "422" in r.output and "id" in r.output
    r = await rastro(ingest, "keys", "list", "no-such-tenant")
    assert r.exit_code == 1 and "404" in r.output
    r = await rastro(ingest, "tenants", "list", api_key="rk_live_wrong")
    assert r.exit_code == 1 and "401" in r.output
    r = await rastro("http://127.0.0.1:9", "tenants", "list")
    assert r.exit_code == 1 and "Cannot reach" in r.output
