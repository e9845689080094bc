"""Schemathesis against every operation of every service's committed OpenAPI, on the running e2e stack.

Each operation is fuzzed twice: with the fuzz tenant's key (every scope), and with the operator key
pinned to the fuzz tenant (``operator_scoped``). Cases are valid and invalid (schemathesis' positive
and negative modes). Checks: no 5xx; every 4xx is problem+json with ``type``/``title``/``status``; the
status code and the content type are documented ones.

Size: ``RASTRO_FUZZ_EXAMPLES`` random cases per operation and key (default 10, seeded, so ``make test``
sends the same requests every run). Above the default the run is the long one: unseeded, and with
schemathesis' coverage phase too (every boundary and every invalid value of every parameter, ~3,000
requests more per key): ``RASTRO_FUZZ_EXAMPLES=200 uv run pytest tests/fuzz``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from tests.fuzz.problem_check import problem_json_4xx
from tests.fuzz.target import FuzzTarget

pytestmark = pytest.mark.e2e
OPENAPI = Path(__file__).resolve().parents[2] / "schemas" / "openapi"
SERVICES = ("ingest", "normalization", "eta", "notification", "dlq-replay")
DEFAULT_EXAMPLES = 10
EXAMPLES = int(os.environ.get("RASTRO_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
LONG_RUN = EXAMPLES > DEFAULT_EXAMPLES
CHECKS = [not_a_server_error, problem_json_4xx, status_code_conformance, content_type_conformance]


def _schemas(*, examples: int, coverage: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "generation": {"max-examples": examples, "database": "none"},
        "phases": {"coverage": {"enabled": coverage}, "stateful": {"enabled": False}},
    }
    if not LONG_RUN:
        config["seed"] = 20261123
    return {
        service.replace("-", "_"): schemathesis.openapi.from_path(
            OPENAPI / f"{service}.json", config=schemathesis.Config.from_dict(config)
        )
        for service in SERVICES
    }


TENANT_SCHEMAS = _schemas(examples=EXAMPLES, coverage=LONG_RUN)
# The operator's own branches (name the tenant, or act on all) need fewer cases than the inputs do.
OPERATOR_SCHEMAS = _schemas(examples=max(EXAMPLES // 2, 3), coverage=LONG_RUN)
SERVICE_OF = {schema.title: name.replace("_", "-") for name, schema in TENANT_SCHEMAS.items()}


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:  # keep-alive: most of a case's cost is the request
        yield session


def _send(case: Any, target: FuzzTarget, http: requests.Session, key: str) -> None:
    case.call_and_validate(
        base_url=target.urls[SERVICE_OF[case.operation.schema.title]],
        session=http,
        headers={"Authorization": f"Bearer {key}"},
        checks=CHECKS,
        timeout=15,
    )


def operator_scoped(case: Any, tenant: str) -> None:
    """Aim an operator-key case at ``tenant`` wherever the operation names one (``?tenant=``, a
    ``{tenant_id}`` path, a body's ``tenant`` or ``filter.tenant``), so that a purge, a replay, a key
    rotation or a new key never reaches another test's tenant, or every tenant at once."""
    if any(p.name == "tenant" for p in case.operation.query):
        case.query = {**(case.query or {}), "tenant": tenant}
    if "tenant_id" in (case.path_parameters or {}):
        case.path_parameters["tenant_id"] = tenant
    if isinstance(case.body, dict):
        if "tenant" in _body_properties(case):
            case.body["tenant"] = tenant
        if isinstance(case.body.get("filter"), dict):
            case.body["filter"]["tenant"] = tenant
        if case.operation.path == "/v1/tenants" and isinstance(case.body.get("id"), str):
            case.body["id"] = f"fz{case.body['id']}"[:63]  # a fuzzer's tenant, never another test's


def _body_properties(case: Any) -> set[str]:
    content = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = case.operation.schema.raw_schema["components"]["schemas"][schema["$ref"].split("/")[-1]]
    return set(schema.get("properties", {}))


@schemathesis.pytest.parametrize(**TENANT_SCHEMAS)
def test_fuzz_with_the_tenant_key(case: Any, fuzz_target: FuzzTarget, http: requests.Session) -> None:
    _send(case, fuzz_target, http, fuzz_target.tenant_key)


@schemathesis.pytest.parametrize(**OPERATOR_SCHEMAS)
def test_fuzz_with_the_operator_key(case: Any, fuzz_target: FuzzTarget, http: requests.Session) -> None:
    operator_scoped(case, fuzz_target.tenant)
    _send(case, fuzz_target, http, fuzz_target.admin_key)


def test_no_service_crashed_while_fuzzed(fuzz_target: FuzzTarget) -> None:
    """After both runs above (pytest keeps a module's order)."""
    crashes = fuzz_target.crashes()
    assert not crashes, "\n".join(crashes)
