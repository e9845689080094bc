from __future__ import annotations

from typing import Any, get_args

import pytest

from rastro_events import ApiKeyRecord
from rastro_kit.audit import SYSTEM, origin_of, record, redact
from rastro_kit.auth import Principal, principal_from_record
from rastro_kit.http import ProblemError, tenant_scope
from rastro_kit.roles import ROLES, SCOPES, Role, effective_scopes, grants, role_scopes

pytestmark = pytest.mark.unit


def key(**kw: Any) -> ApiKeyRecord:
    return ApiKeyRecord.model_validate(
        {"key_id": "k1", "key_hash": "h", "tenant_id": "acme", "scopes": []} | kw
    )


def test_roles_are_made_of_known_scopes_and_only_admin_holds_admin() -> None:
    assert set(ROLES) == {"admin", "operator", "sre", "viewer", "integration", "fleet"} == set(get_args(Role))
    assert all(scopes <= set(SCOPES) for scopes in ROLES.values())
    assert ROLES["admin"] == frozenset(SCOPES)
    assert not any({"admin", "audit:read", "privacy:manage"} & s for r, s in ROLES.items() if r != "admin")
    assert ROLES["viewer"] < ROLES["sre"] < ROLES["operator"] < ROLES["admin"]


def test_what_each_role_may_do() -> None:
    def may(role: str, scope: str) -> bool:
        return grants(role_scopes(role), scope)

    assert may("integration", "events:write") and not may("integration", "subscriptions:read")
    assert may("viewer", "subscriptions:read") and not may("viewer", "subscriptions:manage")
    assert may("sre", "dead-letters:read") and may("sre", "dead-letters:manage")  # manage implies read
    assert not may("sre", "events:write") and not may("viewer", "dead-letters:read")
    assert may("operator", "carriers:manage") and not may("operator", "admin")
    assert not may("operator", "audit:read") and may("admin", "privacy:manage")
    assert role_scopes("auditor") == frozenset()  # an unknown (or since removed) role grants nothing
    # a telematics platform posts positions and routes, nothing else; an ERP key may post them too
    assert may("fleet", "telemetry:write") and not may("fleet", "events:write")
    assert may("integration", "telemetry:write") and not may("fleet", "subscriptions:read")


def test_a_role_decides_the_scopes_and_explicit_scopes_stay_possible() -> None:
    assert effective_scopes("viewer", ["admin"]) == ROLES["viewer"]  # the role wins over a stale snapshot
    assert effective_scopes(None, ["events:write"]) == frozenset({"events:write"})
    legacy = principal_from_record(key(scopes=["subscriptions:manage"]))
    assert legacy is not None and legacy.role is None and legacy.can("subscriptions:read")
    assert not legacy.can("shipments:read")
    sre = principal_from_record(key(role="sre", scopes=["dead-letters:manage"], tenants=["beta"]))
    assert sre is not None and sre.role == "sre" and sre.can("shipments:read")
    assert sre.tenants == frozenset({"beta"})


def test_an_old_reader_sees_a_record_without_role_fields() -> None:
    assert key().role is None and key().tenants == []


def test_a_3pl_key_acts_for_its_own_and_its_listed_tenants() -> None:
    tpl = Principal("k", "parent", frozenset({"shipments:read"}), tenants=frozenset({"child"}))
    assert tenant_scope(tpl, None) == "parent"  # never "every tenant"
    assert tenant_scope(tpl, "child") == "child" and tenant_scope(tpl, "parent") == "parent"
    with pytest.raises(ProblemError) as denied:
        tenant_scope(tpl, "stranger")
    assert denied.value.status == 404
    assert tpl.acts_for("child") and not tpl.acts_for("stranger")


class FakeRequest:
    def __init__(self, headers: dict[str, str], host: str | None = "10.0.0.7") -> None:
        self.headers, self.client = headers, type("Client", (), {"host": host})() if host else None


def test_origin_keeps_peer_proxies_client_and_trace() -> None:
    origin = origin_of(
        FakeRequest(
            {
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "x-forwarded-for": "203.0.113.9, 10.0.0.1",
                "user-agent": "curl/8" + "x" * 1000,
                "x-request-id": "r1",
            }
        )
    )
    assert origin.client_ip == "10.0.0.7" and origin.forwarded_for == "203.0.113.9, 10.0.0.1"
    assert origin.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and origin.request_id == "r1"
    assert origin.user_agent is not None and len(origin.user_agent) == 500
    bare = origin_of(FakeRequest({"traceparent": "garbage"}, host=None))
    assert bare.trace_id is None and bare.client_ip is None


def test_details_lose_their_secrets_at_any_depth() -> None:
    details = {
        "url": "https://x",
        "secret": "whsec_1",
        "credentials": {"token": "t"},
        "nested": {"password": "p", "kept": 1},
        "api_key": "rk_live_1",
    }
    assert redact(details) == {
        "url": "https://x",
        "secret": "[redacted]",
        "credentials": "[redacted]",
        "nested": {"password": "[redacted]", "kept": 1},
        "api_key": "[redacted]",
    }


class RecordingConn:
    def __init__(self) -> None:
        self.args: tuple[Any, ...] = ()

    async def fetchval(self, sql: str, *args: Any) -> int:
        self.args = args
        return 7


async def test_record_names_actions_area_dot_verb_and_defaults_its_actor() -> None:
    conn = RecordingConn()
    with pytest.raises(ValueError):
        await record(conn, None, None, "purge")
    assert await record(conn, None, None, "dead_letters.replay_job_finished", actor_key_id="key_9") == 7
    tenant, actor, role, actor_tenant, action = conn.args[:5]
    assert (tenant, actor, role, actor_tenant, action) == (
        None,
        "key_9",
        None,
        None,
        "dead_letters.replay_job_finished",
    )
    await record(conn, None, None, "retention.purge")
    assert conn.args[1] == SYSTEM
    operator = Principal("operator", None, frozenset({"admin"}))
    await record(conn, operator, None, "tenant.create", "acme", tenant_id="acme")
    assert conn.args[:4] == ("acme", "operator", "operator-key", None)
