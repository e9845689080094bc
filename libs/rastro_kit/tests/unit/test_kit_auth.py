from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from rastro_events import ApiKeyRecord
from rastro_kit.auth import Authenticator, Principal, generate_api_key, hash_key, principal_from_record
from rastro_kit.http import ProblemError, tenant_scope

pytestmark = pytest.mark.unit


class OneKey:
    def __init__(self, key: str, principal: Principal) -> None:
        self.hash, self.principal = hash_key(key), principal

    async def resolve(self, key_hash: str) -> Principal | None:
        return self.principal if key_hash == self.hash else None


def record(**kw: object) -> ApiKeyRecord:
    base: dict[str, object] = {
        "key_id": "k1",
        "key_hash": "h",
        "tenant_id": "acme",
        "scopes": ["events:write"],
    }
    return ApiKeyRecord.model_validate(base | kw)


def test_generated_keys_are_long_random_and_tagged_by_environment() -> None:
    keys = {generate_api_key("production") for _ in range(100)}
    assert len(keys) == 100 and all(k.startswith("rk_live_") and len(k) >= 40 for k in keys)
    assert generate_api_key("sandbox").startswith("rk_test_")


def test_revoked_and_expired_keys_grant_nothing() -> None:
    assert principal_from_record(record()) is not None
    assert principal_from_record(record(revoked=True)) is None
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert principal_from_record(record(expires_at=past)) is None


async def test_bearer_parsing_operator_key_and_unknown_keys() -> None:
    tenant = Principal("k1", "acme", frozenset({"shipments:read"}))
    auth = Authenticator(OneKey("rk_test_abc", tenant), SecretStr("rk_admin_x"))
    assert await auth.authenticate("Bearer rk_test_abc") == tenant
    assert await auth.authenticate("bearer  rk_test_abc ") == tenant
    operator = await auth.authenticate("Bearer rk_admin_x")
    assert operator is not None and operator.is_operator and operator.can("dead-letters:manage")
    for header in (None, "", "Bearer", "Basic rk_test_abc", "Bearer rk_test_abd"):
        assert await auth.authenticate(header) is None
    assert not tenant.can("events:write") and tenant.can("shipments:read")


def test_tenant_scope_hides_other_tenants() -> None:
    tenant = Principal("k1", "acme", frozenset())
    operator = Principal("op", None, frozenset({"admin"}))
    assert tenant_scope(tenant, None) == "acme" and tenant_scope(tenant, "acme") == "acme"
    with pytest.raises(ProblemError) as err:
        tenant_scope(tenant, "globex")
    assert err.value.status == 404
    assert tenant_scope(operator, None) is None and tenant_scope(operator, "globex") == "globex"
