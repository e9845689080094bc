"""The fuzzing target: the e2e stack's five services and a tenant of the fuzzer's own, whose key holds
every scope. Operator-key runs are pinned to that tenant, so nothing the fuzzer creates, replays or
purges touches another test's data."""

from __future__ import annotations

import secrets

import httpx
import pytest

from rastro_kit.auth import SCOPES
from tests.e2e.stack import Stack, until_known_everywhere
from tests.fuzz.target import FuzzTarget


@pytest.fixture(scope="session")
async def fuzz_target(e2e_stack: Stack, gateway: str) -> FuzzTarget:
    tenant = f"fuzz-{secrets.token_hex(4)}"
    admin = {"Authorization": f"Bearer {e2e_stack.admin_key}"}
    ingest = e2e_stack.services["ingest"].url
    async with httpx.AsyncClient(base_url=ingest, timeout=10) as client:
        r = await client.post("/v1/tenants", json={"id": tenant, "name": "API fuzzing"}, headers=admin)
        assert r.status_code == 201, r.text
        r = await client.post(
            f"/v1/tenants/{tenant}/keys",
            json={"name": "fuzz", "environment": "sandbox", "scopes": list(SCOPES)},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        key = str(r.json()["key"])
    async with httpx.AsyncClient(base_url=gateway, timeout=10) as client:
        await until_known_everywhere(client, key)
    return FuzzTarget(
        urls={name: s.url for name, s in e2e_stack.services.items()},
        tenant=tenant,
        tenant_key=key,
        admin_key=e2e_stack.admin_key,
        logs={name: (s.log_path, s.log_path.stat().st_size) for name, s in e2e_stack.services.items()},
    )
