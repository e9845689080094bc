"""The errors every route can answer, written into its service's OpenAPI.

The plumbing in ``rastro_kit.http`` answers every error as ``application/problem+json``: invalid input
(422), a missing or unknown key (401), a missing scope (403), another tenant's resource (404), an
unreadable body or cursor (400), a body over the limit (413), a database outage (503). FastAPI documents
none of that, and documents its own 422 shape, which we never send: clients and the API fuzzer would
meet undocumented status codes and content types. ``add_problem_responses`` adds them to each operation
beside what a route declares itself (e.g. 409, 429) and points every 4xx/5xx at one ``Problem`` schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

__all__ = ["PROBLEM_SCHEMA", "add_problem_responses", "document_problems", "problem_statuses"]

# As rastro_kit.http answers (it imports this module, so the constants are not taken from there).
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://rastro.dev/problems/"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; extensions such as `errors` may follow",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}, "description": "field or per-index errors"},
    },
}


@dataclass(frozen=True)
class _Shared:
    name: str  # under components.responses
    type_: str  # as the handlers in rastro_kit.http answer it
    title: str
    description: str


_SHARED = {
    400: _Shared("BadRequest", "400", "Bad Request", "The body or a cursor could not be read."),
    401: _Shared(
        "Unauthorized", "unauthorized", "Unauthorized", "No valid API key: `Authorization: Bearer <key>`."
    ),
    403: _Shared("Forbidden", "forbidden", "Forbidden", "The key lacks the scope this route needs."),
    404: _Shared("NotFound", "not-found", "Not Found", "No such resource, or it belongs to another tenant."),
    413: _Shared(
        "ContentTooLarge", "body-too-large", "Content Too Large", "The body is over the size limit."
    ),
    422: _Shared(
        "ValidationFailed", "validation-error", "Unprocessable Content", "Invalid body or parameters."
    ),
    503: _Shared(
        "Unavailable", "unavailable", "Service Unavailable", "The database is unavailable: retry later."
    ),
}
_RETRY_AFTER = {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


def problem_statuses(operation: dict[str, Any]) -> set[int]:
    """The problems the kit may answer on an OpenAPI operation; none on one without input or key
    (the ops routes)."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    needs_key = bool(operation.get("security"))
    if not (parameters or has_body or needs_key):
        return set()
    statuses = {422, 503}
    if needs_key:
        statuses |= {401, 403, 404}
    if has_body or any(p.get("in") == "query" and p.get("name") == "cursor" for p in parameters):
        statuses.add(400)
    if has_body:
        statuses.add(413)
    return statuses


def add_problem_responses(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (changed in place, and returned) with the kit's problems on every operation."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            wanted = problem_statuses(operation)
            if wanted:
                operation["responses"] = _documented(operation.get("responses", {}), wanted)
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for name in _FASTAPI_ERROR_SCHEMAS:  # only FastAPI's 422 used them, and every 4xx is a Problem now
        components["schemas"].pop(name, None)
    shared = components.setdefault("responses", {})
    for status, shared_problem in _SHARED.items():
        shared[shared_problem.name] = _problem_response(status, shared_problem)
    return document


def document_problems(app: FastAPI) -> None:
    """Make ``app.openapi()`` document the kit's problem responses."""
    generate = app.openapi
    app.openapi = lambda: add_problem_responses(generate())  # type: ignore[method-assign]


def _documented(responses: dict[str, Any], wanted: set[int]) -> dict[str, Any]:
    """The operation's responses, the shared problems added (or replacing FastAPI's default 422), in
    status order; the route's own error responses say problem+json too."""
    out = dict(responses)
    for status in wanted:
        if str(status) not in out or _is_fastapi_default(out[str(status)]):
            out[str(status)] = {"$ref": f"#/components/responses/{_SHARED[status].name}"}
    for code, response in out.items():
        if code[0] in "45" and "$ref" not in response:
            content = response.setdefault("content", {})
            if PROBLEM_JSON not in content:
                content.clear()
                content[PROBLEM_JSON] = {"schema": PROBLEM_REF}
    return dict(sorted(out.items()))


def _problem_response(status: int, shared: _Shared) -> dict[str, Any]:
    example = {"type": PROBLEM_BASE + shared.type_, "title": shared.title, "status": status}
    response: dict[str, Any] = {
        "description": shared.description,
        "content": {
            PROBLEM_JSON: {"schema": PROBLEM_REF, "example": {**example, "detail": shared.description}}
        },
    }
    if status == 503:
        response["headers"] = {"Retry-After": _RETRY_AFTER}
    return response


def _is_fastapi_default(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")
