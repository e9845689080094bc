"""Every error the kit answers is documented, as problem+json, on every operation of every service
(the API fuzzer's status-code and content-type checks rely on it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rastro_kit.openapi_export import SERVICES, render
from rastro_kit.openapi_problems import add_problem_responses, problem_statuses

pytestmark = pytest.mark.unit
PROBLEM_JSON = "application/problem+json"
FASTAPI_422 = {
    "description": "Validation Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
}


def test_an_authenticated_operation_with_a_body_documents_every_kit_problem() -> None:
    operation = {"security": [{"apiKey": []}], "requestBody": {}, "responses": {"200": {}}}
    assert problem_statuses(operation) == {400, 401, 403, 404, 413, 422, 503}


def test_a_cursor_can_be_a_bad_request_and_an_ops_route_has_no_problems() -> None:
    listing = {"parameters": [{"name": "cursor", "in": "query"}]}
    assert problem_statuses(listing) == {400, 422, 503}
    assert problem_statuses({"responses": {"200": {}}}) == set()


def test_fastapi_422_is_replaced_and_a_route_own_problem_kept_as_problem_json() -> None:
    document: dict[str, Any] = {
        "paths": {
            "/v1/x": {
                "post": {
                    "security": [{"apiKey": []}],
                    "requestBody": {},
                    "responses": {"409": {"description": "taken"}, "422": FASTAPI_422},
                }
            }
        },
        "components": {"schemas": {"HTTPValidationError": {}, "ValidationError": {}}},
    }
    responses = add_problem_responses(document)["paths"]["/v1/x"]["post"]["responses"]
    assert responses["422"] == {"$ref": "#/components/responses/ValidationFailed"}
    assert responses["409"]["description"] == "taken"
    assert set(responses["409"]["content"]) == {PROBLEM_JSON}
    assert list(responses) == sorted(responses)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert add_problem_responses(json.loads(json.dumps(document))) == document  # idempotent


def _resolve(spec: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    ref = response.get("$ref")
    return spec["components"]["responses"][ref.rsplit("/", 1)[1]] if ref else response


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_documents_its_errors_as_problems(service: str) -> None:
    spec = json.loads(render(service))
    assert "HTTPValidationError" not in json.dumps(spec)
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            where = f"{service}: {method.upper()} {path}"
            for status, response in op["responses"].items():
                if status[0] in "45":
                    assert set(_resolve(spec, response)["content"]) == {PROBLEM_JSON}, f"{where} {status}"
            if op.get("security"):
                assert {"401", "403", "404", "422", "503"} <= set(op["responses"]), where
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}


@pytest.mark.parametrize(
    ("service", "method", "path", "status"),
    [  # what the API fuzzer met undocumented
        ("normalization", "put", "/v1/mappings/carriers/{alias}", "201"),
        ("normalization", "put", "/v1/mappings/services/{alias}", "201"),
        ("normalization", "put", "/v1/mappings/statuses/{carrier}/{code}", "201"),
        ("dlq-replay", "post", "/v1/dead-letters/purge", "409"),
        ("dlq-replay", "post", "/v1/replay-jobs/{job_id}/cancel", "409"),
        ("notification", "post", "/v1/subscriptions/{sub_id}/messages/{message_id}/resend", "409"),
        ("ingest", "post", "/v1/imports", "415"),
        ("ingest", "post", "/v1/carriers/{carrier}/webhook", "404"),
        ("ingest", "post", "/v1/tenants/{tenant_id}/keys", "400"),
    ],
)
def test_statuses_the_fuzzer_found_undocumented_are_documented(
    service: str, method: str, path: str, status: str
) -> None:
    assert status in json.loads(render(service))["paths"][path][method]["responses"]
