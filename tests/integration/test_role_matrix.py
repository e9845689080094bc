"""Role × endpoint: every route of every service, for every role, is allowed or denied as this table says
(docs/roles.md). A route without a row fails the test, and so does a row without a route: a new route
must be classified here.

Allowed means the request got past authorization (any answer but 401/403: a 404 for a made-up id or a
422 for the deliberately invalid body counts); denied means 403. Bodies are a JSON list, which no route
accepts, so an allowed request changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from rastro_kit.roles import ROLES
from tests.integration.service_apps import ROLE_NAMES, ServiceApps

pytestmark = pytest.mark.integration

SKIPPED = frozenset(
    {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/healthz", "/readyz", "/metrics"}
)
PUBLIC = "public"  # authenticated otherwise (a carrier's own secret), never by an API key

ALL = frozenset(ROLE_NAMES)  # shipments:read is in every role
EVENTS = frozenset({"admin", "operator", "integration"})
FLEET = EVENTS | {"fleet"}  # telemetry:write, which events:write includes
SUBSCRIPTIONS_READ = frozenset({"admin", "operator", "sre", "viewer"})
DEAD_LETTERS = frozenset({"admin", "operator", "sre"})
MANAGE = frozenset({"admin", "operator"})  # mappings, subscriptions, notices, carrier connections
ADMIN = frozenset({"admin"})  # keys, audit, privacy, retention
NOBODY: frozenset[str] = frozenset()  # the operator key (every tenant) only

MATRIX: dict[tuple[str, str, str], frozenset[str] | str] = {
    # ingest
    ("ingest", "POST", "/v1/events"): EVENTS,
    ("ingest", "POST", "/v1/telemetry"): FLEET,
    ("ingest", "POST", "/v1/tenants"): NOBODY,
    ("ingest", "GET", "/v1/tenants"): ADMIN,
    ("ingest", "POST", "/v1/tenants/{tenant_id}/keys"): ADMIN,
    ("ingest", "GET", "/v1/tenants/{tenant_id}/keys"): ADMIN,
    ("ingest", "DELETE", "/v1/tenants/{tenant_id}/keys/{key_id}"): ADMIN,
    ("ingest", "POST", "/v1/tenants/{tenant_id}/keys/{key_id}/rotate"): ADMIN,
    ("ingest", "GET", "/v1/keys/self"): ALL,  # any valid key may ask who it is
    ("ingest", "POST", "/v1/imports"): EVENTS,
    ("ingest", "GET", "/v1/imports"): EVENTS,
    ("ingest", "GET", "/v1/imports/{job_id}"): EVENTS,
    ("ingest", "GET", "/v1/imports/{job_id}/errors"): EVENTS,
    ("ingest", "GET", "/v1/imports/{job_id}/acknowledgement"): EVENTS,
    ("ingest", "POST", "/v1/carriers/connections"): MANAGE,
    ("ingest", "GET", "/v1/carriers/connections"): MANAGE,
    ("ingest", "GET", "/v1/carriers/connections/{connection_id}"): MANAGE,
    ("ingest", "DELETE", "/v1/carriers/connections/{connection_id}"): MANAGE,
    ("ingest", "POST", "/v1/carriers/connections/{connection_id}/shipments"): EVENTS,
    ("ingest", "POST", "/v1/carriers/{carrier}/webhook"): PUBLIC,
    ("ingest", "GET", "/v1/audit/ingest"): ADMIN,
    ("ingest", "GET", "/v1/retention/ingest"): ADMIN,
    ("ingest", "PUT", "/v1/retention/ingest"): ADMIN,
    # normalization
    ("normalization", "GET", "/v1/shipments/{tracking_number}"): ALL,
    ("normalization", "GET", "/v1/shipments"): ALL,
    ("normalization", "GET", "/v1/mappings"): ALL,
    ("normalization", "GET", "/v1/mappings/history"): ALL,
    ("normalization", "GET", "/v1/mappings/carriers/{alias}"): ALL,
    ("normalization", "PUT", "/v1/mappings/carriers/{alias}"): MANAGE,
    ("normalization", "DELETE", "/v1/mappings/carriers/{alias}"): MANAGE,
    ("normalization", "GET", "/v1/mappings/services/{alias}"): ALL,
    ("normalization", "PUT", "/v1/mappings/services/{alias}"): MANAGE,
    ("normalization", "DELETE", "/v1/mappings/services/{alias}"): MANAGE,
    ("normalization", "GET", "/v1/mappings/statuses/{carrier}/{code}"): ALL,
    ("normalization", "PUT", "/v1/mappings/statuses/{carrier}/{code}"): MANAGE,
    ("normalization", "DELETE", "/v1/mappings/statuses/{carrier}/{code}"): MANAGE,
    ("normalization", "GET", "/v1/kpis"): ALL,
    ("normalization", "PUT", "/v1/routes/{route_id}"): FLEET,
    ("normalization", "GET", "/v1/routes/{route_id}"): ALL,
    ("normalization", "DELETE", "/v1/routes/{route_id}"): FLEET,
    ("normalization", "GET", "/v1/geofence/settings"): ALL,
    ("normalization", "PUT", "/v1/geofence/settings"): MANAGE,
    ("normalization", "GET", "/v1/audit/normalization"): ADMIN,
    ("normalization", "GET", "/v1/retention/normalization"): ADMIN,
    ("normalization", "PUT", "/v1/retention/normalization"): ADMIN,
    # eta
    ("eta", "GET", "/v1/shipments/{tracking_number}/eta"): ALL,
    ("eta", "GET", "/v1/shipments/{tracking_number}/eta/history"): ALL,
    ("eta", "GET", "/v1/eta/lanes"): ALL,
    ("eta", "GET", "/v1/eta/kpis"): ALL,
    ("eta", "GET", "/v1/eta/kpis/errors"): ALL,
    ("eta", "GET", "/v1/audit/eta"): ADMIN,
    ("eta", "GET", "/v1/retention/eta"): ADMIN,
    ("eta", "PUT", "/v1/retention/eta"): ADMIN,
    # notification
    ("notification", "POST", "/v1/subscriptions"): MANAGE,
    ("notification", "GET", "/v1/subscriptions"): SUBSCRIPTIONS_READ,
    ("notification", "GET", "/v1/subscriptions/{sub_id}"): MANAGE,  # answers the signing secret
    ("notification", "PATCH", "/v1/subscriptions/{sub_id}"): MANAGE,
    ("notification", "POST", "/v1/subscriptions/{sub_id}/rotate-secret"): MANAGE,
    ("notification", "DELETE", "/v1/subscriptions/{sub_id}"): MANAGE,
    ("notification", "GET", "/v1/subscriptions/{sub_id}/messages"): SUBSCRIPTIONS_READ,
    ("notification", "GET", "/v1/subscriptions/{sub_id}/messages/{message_id}"): SUBSCRIPTIONS_READ,
    ("notification", "GET", "/v1/subscriptions/{sub_id}/attempts"): SUBSCRIPTIONS_READ,
    ("notification", "POST", "/v1/subscriptions/{sub_id}/messages/{message_id}/resend"): MANAGE,
    ("notification", "POST", "/v1/subscriptions/{sub_id}/recover"): MANAGE,
    ("notification", "GET", "/v1/notifications/settings"): SUBSCRIPTIONS_READ,
    ("notification", "PUT", "/v1/notifications/settings"): MANAGE,
    ("notification", "GET", "/v1/notifications/templates"): SUBSCRIPTIONS_READ,
    ("notification", "PUT", "/v1/notifications/templates/{milestone}/{locale}"): MANAGE,
    ("notification", "DELETE", "/v1/notifications/templates/{milestone}/{locale}"): MANAGE,
    ("notification", "PUT", "/v1/notifications/recipients/{tracking_number}"): MANAGE,
    ("notification", "GET", "/v1/notifications/recipients/{tracking_number}"): MANAGE,  # personal data
    ("notification", "DELETE", "/v1/notifications/recipients/{tracking_number}"): MANAGE,
    ("notification", "PUT", "/v1/notifications/opt-outs"): MANAGE,
    ("notification", "GET", "/v1/notifications/messages"): SUBSCRIPTIONS_READ,
    ("notification", "POST", "/v1/privacy/notification/export"): ADMIN,
    ("notification", "POST", "/v1/privacy/notification/erase"): ADMIN,
    ("notification", "POST", "/v1/privacy/notification/rotate-keys"): ADMIN,
    ("notification", "POST", "/v1/privacy/notification/rewrap-keys"): ADMIN,
    ("notification", "POST", "/v1/privacy/notification/shred-tenant"): ADMIN,
    ("notification", "GET", "/v1/audit/notification"): ADMIN,
    ("notification", "GET", "/v1/retention/notification"): ADMIN,
    ("notification", "PUT", "/v1/retention/notification"): ADMIN,
    # dlq-replay
    ("dlq-replay", "GET", "/v1/dead-letters/audit"): DEAD_LETTERS,
    ("dlq-replay", "GET", "/v1/dead-letters/export"): DEAD_LETTERS,
    ("dlq-replay", "POST", "/v1/dead-letters/purge"): DEAD_LETTERS,
    ("dlq-replay", "GET", "/v1/dead-letters"): DEAD_LETTERS,
    ("dlq-replay", "GET", "/v1/dead-letters/stats"): DEAD_LETTERS,
    ("dlq-replay", "GET", "/v1/dead-letters/{dead_letter_id}"): DEAD_LETTERS,
    ("dlq-replay", "POST", "/v1/dead-letters/replay"): DEAD_LETTERS,
    ("dlq-replay", "DELETE", "/v1/dead-letters/{dead_letter_id}"): DEAD_LETTERS,
    ("dlq-replay", "GET", "/v1/replay-jobs"): DEAD_LETTERS,
    ("dlq-replay", "GET", "/v1/replay-jobs/{job_id}"): DEAD_LETTERS,
    ("dlq-replay", "POST", "/v1/replay-jobs/{job_id}/cancel"): DEAD_LETTERS,
    ("dlq-replay", "POST", "/v1/privacy/dead-letters/export"): ADMIN,
    ("dlq-replay", "POST", "/v1/privacy/dead-letters/erase"): ADMIN,
    ("dlq-replay", "POST", "/v1/privacy/dead-letters/rotate-keys"): ADMIN,
    ("dlq-replay", "POST", "/v1/privacy/dead-letters/rewrap-keys"): ADMIN,
    ("dlq-replay", "POST", "/v1/privacy/dead-letters/shred-tenant"): ADMIN,
    ("dlq-replay", "GET", "/v1/audit/dlq-replay"): ADMIN,
    ("dlq-replay", "GET", "/v1/retention/dead-letters"): ADMIN,
    ("dlq-replay", "PUT", "/v1/retention/dead-letters"): ADMIN,
}
SAMPLES = {
    "tracking_number": "AA123456785BR",
    "carrier": "correios",
    "code": "BDE-01",
    "milestone": "delivered",
    "locale": "pt-BR",
}


def routes_of(service: str, app: FastAPI) -> set[tuple[str, str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        if path is None or path in SKIPPED:
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((service, method, path))
    return found


def concrete(path: str, tenant: str) -> str:
    def sample(m: re.Match[str]) -> str:
        return tenant if m.group(1) == "tenant_id" else SAMPLES.get(m.group(1), "rm-missing-1")

    return re.sub(r"\{([^}]+)\}", sample, path)


async def call(client: httpx.AsyncClient, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body: dict[str, Any] = {"json": []} if method in {"POST", "PUT", "PATCH"} else {}
    return await client.request(method, path, headers=headers, **body)


def test_every_route_of_every_service_has_exactly_one_row(service_apps: ServiceApps) -> None:
    routes = set().union(*(routes_of(name, app) for name, app in service_apps.apps.items()))
    unclassified = sorted(routes - MATRIX.keys())
    stale = sorted(MATRIX.keys() - routes)
    assert not unclassified, f"routes without a row in MATRIX (classify them): {unclassified}"
    assert not stale, f"rows in MATRIX without a route (remove them): {stale}"


def test_the_role_table_is_what_the_matrix_assumes() -> None:
    assert set(ROLES) == set(ROLE_NAMES)
    assert "admin" in ROLES["admin"] and not any("admin" in s for r, s in ROLES.items() if r != "admin")


async def test_each_role_is_allowed_or_denied_on_each_route(service_apps: ServiceApps) -> None:
    wrong: list[str] = []
    checked = 0
    for (service, method, pattern), allowed in sorted(MATRIX.items(), key=lambda kv: str(kv[0])):
        client = service_apps.clients[service]
        path = concrete(pattern, service_apps.tenant)
        if allowed == PUBLIC:
            answer = await call(client, method, path, None)
            if answer.status_code == 401 and "API key" in answer.text:
                wrong.append(f"{method} {pattern}: public route asks for an API key")
            continue
        assert isinstance(allowed, frozenset)
        anonymous = await call(client, method, path, None)
        if anonymous.status_code != 401:
            wrong.append(f"{method} {pattern} without a key: {anonymous.status_code}, not 401")
        for role in (*ROLE_NAMES, "operator-key"):
            answer = await call(client, method, path, service_apps.keys[role])
            checked += 1
            expected = role == "operator-key" or role in allowed
            if answer.status_code == 401:
                wrong.append(f"{role} {method} {pattern}: 401 (key unknown to {service})")
            elif expected and answer.status_code == 403:
                wrong.append(f"{role} {method} {pattern}: denied, table says allowed ({answer.text[:120]})")
            elif not expected and answer.status_code != 403:
                wrong.append(f"{role} {method} {pattern}: {answer.status_code}, table says denied")
    assert not wrong, "\n".join(wrong)
    keyed = [row for row in MATRIX.values() if row != PUBLIC]
    per_route = len(ROLE_NAMES) + 1
    assert checked == per_route * len(keyed) > per_route * 70  # every role and the operator key, every route


async def test_a_3pl_key_acts_for_its_listed_tenants_only(service_apps: ServiceApps) -> None:
    key = service_apps.keys["3pl"]
    subs = service_apps.clients["notification"]
    for tenant, status in (
        (service_apps.tenant, 200),
        (service_apps.child, 200),
        (service_apps.stranger, 404),
    ):
        answer = await subs.get("/v1/subscriptions", params={"tenant": tenant}, headers=ServiceApps.auth(key))
        assert answer.status_code == status, (tenant, answer.text)
    shipments = service_apps.clients["normalization"]
    child = await shipments.get(
        "/v1/mappings", params={"tenant": service_apps.child}, headers=ServiceApps.auth(key)
    )
    assert child.status_code == 200 and child.json()["tenant"] == service_apps.child
    other = await shipments.get(
        "/v1/mappings", params={"tenant": service_apps.stranger}, headers=ServiceApps.auth(key)
    )
    assert other.status_code == 404
    # Without ?tenant= the key acts for its own tenant, never for "every tenant".
    own = await shipments.get("/v1/mappings", headers=ServiceApps.auth(key))
    assert own.status_code == 200 and own.json()["tenant"] == service_apps.tenant


async def test_only_the_operator_key_makes_3pl_keys(service_apps: ServiceApps) -> None:
    answer = await service_apps.clients["ingest"].post(
        f"/v1/tenants/{service_apps.tenant}/keys",
        json={"role": "viewer", "tenants": [service_apps.stranger]},
        headers=ServiceApps.auth(service_apps.keys["admin"]),
    )
    assert answer.status_code == 403, answer.text
    both = await service_apps.clients["ingest"].post(
        f"/v1/tenants/{service_apps.tenant}/keys",
        json={"role": "viewer", "scopes": ["events:write"]},
        headers=ServiceApps.auth(service_apps.keys["admin"]),
    )
    assert both.status_code == 422, both.text


async def test_a_key_made_before_read_scopes_keeps_reading(service_apps: ServiceApps) -> None:
    key = service_apps.keys["legacy-subscriptions"]
    subs = await service_apps.clients["notification"].get("/v1/subscriptions", headers=ServiceApps.auth(key))
    assert subs.status_code == 200, subs.text
    shipments = await service_apps.clients["normalization"].get(
        "/v1/shipments", headers=ServiceApps.auth(key)
    )
    assert shipments.status_code == 403
