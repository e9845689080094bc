"""``POST /v1/events``: one event or a batch, accepted only once it is in the outbox."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from rastro_ingest.adapters.repository import claim_idempotency_key, store_idempotent_answer, tenant_exists
from rastro_ingest.domain.events_in import read_events
from rastro_ingest.outgoing import outbox_rows
from rastro_ingest.polling.tracked import track_shipments
from rastro_ingest.rate_limit import rate_limited
from rastro_ingest.references import remember_refs
from rastro_kit.auth import Principal
from rastro_kit.http import PROBLEM_BASE, PROBLEM_JSON, ProblemError
from rastro_kit.openapi_problems import PROBLEM_REF
from rastro_kit.outbox import OutboxRow, enqueue_rows

__all__ = ["acting_tenant", "batch_answer", "problem_responses", "router", "store_batch"]

router = APIRouter(tags=["events"])
WRITE_EVENTS = rate_limited("events:write")

_PROBLEMS: dict[int, tuple[str, str, str]] = {
    401: ("unauthorized", "Unauthorized", "A valid API key is required: Authorization: Bearer <key>."),
    403: ("forbidden", "Forbidden", "This API key lacks the scope 'events:write'."),
    404: ("404", "Not Found", "Not found."),
    409: ("tenant-exists", "Conflict", "Tenant 'acme' already exists."),
    413: ("batch-too-large", "Content Too Large", "A batch holds at most 1000 events; this one has 1200."),
    422: ("validation-error", "Unprocessable Content", "The request body or parameters are invalid."),
    429: ("rate-limited", "Too Many Requests", "Rate limit of this API key exceeded; retry in 1 s."),
    503: (
        "unavailable",
        "Service Unavailable",
        "The database is unavailable; nothing was accepted. Try again.",
    ),
}
_HEADER_DOCS = {
    "RateLimit-Limit": "requests a full bucket allows at once (the burst)",
    "RateLimit-Remaining": "requests left in the bucket now",
    "RateLimit-Reset": "seconds until the bucket is full again",
    "Retry-After": "seconds to wait before retrying",
}
RATE_LIMIT_HEADERS = {k: {"description": v, "schema": {"type": "integer"}} for k, v in _HEADER_DOCS.items()}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting problem+json errors, with an example each."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        type_, title, detail = _PROBLEMS[status]
        example = {"type": PROBLEM_BASE + type_, "title": title, "status": status, "detail": detail}
        out[status] = {
            "description": title,
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF, "example": example}},
        }
        if status in (429, 503):
            wanted = (
                RATE_LIMIT_HEADERS if status == 429 else {"Retry-After": RATE_LIMIT_HEADERS["Retry-After"]}
            )
            out[status]["headers"] = wanted
    return out


EXAMPLE_TRACKING = {
    "type": "tracking.event",
    "carrier": "correios",
    "tracking_number": "AA123456785BR",
    "status_code": "BDE-01",
    "description": "Objeto entregue ao destinatário",
    "occurred_at": "2026-11-23T14:05:11-03:00",
    "location": {"city": "São Paulo", "state": "SP", "country": "BR"},
}
EXAMPLE_ORDER = {
    "type": "order.shipped",
    "order_id": "PED-1001",
    "tracking_number": "AA123456785BR",
    "carrier": "correios",
    "service": "SEDEX",
    "occurred_at": "2026-11-21T10:00:00-03:00",
}
EXAMPLE_ACCEPTED = {
    "accepted": 2,
    "events": [
        {"index": 0, "id": "01JD5Z8Q3T6W0K2N9V7R4B1C8E"},
        {"index": 1, "id": "01JD5Z8Q3T6W0K2N9V7R4B1C8F"},
    ],
}
EXAMPLE_PARTIAL = {
    "type": PROBLEM_BASE + "batch-partially-rejected",
    "title": "Some events were rejected",
    "status": 207,
    "detail": "1 accepted, 1 rejected; see `errors` by index.",
    "accepted": [{"index": 0, "id": "01JD5Z8Q3T6W0K2N9V7R4B1C8E"}],
    "errors": [
        {"index": 1, "errors": [{"field": "occurred_at", "message": "Input should be a valid datetime"}]}
    ],
}


@router.post(
    "/v1/events",
    status_code=202,
    summary="Publish one event or a batch",
    description=(
        'Body: one event object, or `{"events": [...]}` with at most 1,000 events. Each event has a `type` '
        "(`tracking.event`, `order.created`, `invoice.issued`, `order.shipped`, `order.cancelled`) and an "
        "optional `event_id` of your own (events with the same id are applied once). 202 means every "
        "accepted event is durably stored and will be published. With some events invalid the answer is "
        "207 (problem+json) listing `accepted` events and `errors` by index; with all invalid, 422. Send "
        "`Idempotency-Key` to make retries safe: the same key with the same body returns the first "
        "answer; with another body, 422."
    ),
    responses={
        202: {
            "description": "every event accepted and stored; it will be published",
            "headers": {k: v for k, v in RATE_LIMIT_HEADERS.items() if k != "Retry-After"},
            "content": {"application/json": {"example": EXAMPLE_ACCEPTED}},
        },
        207: {
            "description": "some events rejected: `accepted` and `errors` by index",
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF, "example": EXAMPLE_PARTIAL}},
        },
        **problem_responses(401, 403, 404, 413, 422, 429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "description": 'one event, or {"events": [...]}'},
                    "examples": {
                        "tracking": {"value": EXAMPLE_TRACKING},
                        "batch": {"value": {"events": [EXAMPLE_ORDER, EXAMPLE_TRACKING]}},
                    },
                }
            },
        }
    },
)
async def post_events(
    request: Request,
    principal: Principal = WRITE_EVENTS,
    tenant: str | None = Query(default=None, description="operator keys only: the tenant to publish for"),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key", max_length=255),
    traceparent: str | None = Header(default=None),
) -> Response:
    runtime = request.app.state.runtime
    tenant_id = acting_tenant(principal, tenant)
    body = await _json_body(request)
    items = _items(body, runtime.settings.max_batch_events)
    accepted, rejected = read_events(items)
    # Encoded before the transaction, so it holds its connection only for the round trips.
    ids, rows = outbox_rows(accepted, tenant_id, traceparent=traceparent)
    payloads = [a.payload for a in accepted]

    async def along(conn: Any) -> None:
        await track_shipments(conn, tenant_id, payloads)  # carrier polling
        await remember_refs(conn, tenant_id, payloads)  # what EDI files match orders by

    done = [{"index": a.index, "id": i} for a, i in zip(accepted, ids, strict=True)]
    answer = batch_answer("events", done, [{"index": r.index, "errors": r.errors} for r in rejected])
    return await store_batch(request, tenant_id, rows, answer, body, idempotency_key, along=along)


async def store_batch(
    request: Request,
    tenant_id: str,
    rows: list[OutboxRow],
    answer: tuple[int, Any, str],
    body: Any,
    idempotency_key: str | None,
    *,
    along: Callable[[Any], Awaitable[None]] | None = None,
) -> Response:
    """The accepted records into the outbox (one COPY) and ``along``'s writes, in one transaction with
    the stored answer of an ``Idempotency-Key`` (whose earlier answer is replayed instead)."""
    request_hash = _request_hash(body) if idempotency_key else ""
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        if not await tenant_exists(conn, tenant_id):
            raise ProblemError(404, f"Unknown tenant {tenant_id!r}.", type_="unknown-tenant")
        if idempotency_key:
            stored = await claim_idempotency_key(conn, tenant_id, idempotency_key, request_hash)
            if stored is not None:
                return _replay(stored, request_hash, body)
        await enqueue_rows(conn, rows)
        if along is not None:
            await along(conn)
        status, content, content_type = answer
        encoded = orjson.dumps(content)  # once: the response, and the stored answer of a retry
        if idempotency_key:
            await store_idempotent_answer(conn, tenant_id, idempotency_key, status, encoded, content_type)
    return Response(encoded, status_code=status, media_type=content_type)


async def _json_body(request: Request) -> Any:
    """The body parsed with orjson (a 1,000-event batch is the hot path), errors as problem+json."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ProblemError(
            422,
            "The body is not valid JSON.",
            type_="validation-error",
            errors=[{"field": "(body)", "message": str(exc)}],
        ) from None


def acting_tenant(principal: Principal, requested: str | None) -> str:
    """The tenant a request writes for: the key's own, or one it may act for; operators must name it."""
    if principal.tenant_id is not None:  # a 3PL key may also name a tenant it acts for (docs/roles.md)
        if requested is not None and not principal.acts_for(requested):
            raise ProblemError(403, "This key cannot publish for another tenant.", type_="forbidden")
        return requested or principal.tenant_id
    if not requested:
        raise ProblemError(422, "Operator keys must name the tenant: ?tenant=<id>.", type_="tenant-required")
    return requested


def _items(body: Any, limit: int) -> list[Any]:
    if isinstance(body, dict) and "events" in body:
        items = body["events"]
        if not isinstance(items, list):
            raise ProblemError(
                422,
                "`events` must be an array.",
                type_="validation-error",
                errors=[{"field": "events", "message": "must be an array"}],
            )
    elif isinstance(body, dict):
        items = [body]
    else:
        raise ProblemError(
            422,
            'The body must be an event object or {"events": [...]}.',
            type_="validation-error",
            errors=[{"field": "(body)", "message": "must be an object"}],
        )
    if not items:
        raise ProblemError(
            422,
            "The batch is empty.",
            type_="validation-error",
            errors=[{"field": "events", "message": "must not be empty"}],
        )
    if len(items) > limit:
        raise ProblemError(
            413, f"A batch holds at most {limit} events; this one has {len(items)}.", type_="batch-too-large"
        )
    return items


def _request_hash(body: Any) -> str:
    """SHA-256 of the body's canonical JSON (keys sorted), so a retry need not repeat its bytes."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _legacy_request_hash(body: Any) -> str:
    """The hash answers stored before the orjson one carry (``json.dumps``); they expire after the TTL."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def batch_answer(noun: str, done: list[dict[str, Any]], errors: list[dict[str, Any]]) -> tuple[int, Any, str]:
    """(status, body, content type) of a batch: 202 all stored, 207 some (problem+json), 422 none.
    ``noun`` is the plural the messages use (``events``, ``positions``)."""
    if not errors:
        return 202, {"accepted": len(done), "events": done}, "application/json"
    status = 207 if done else 422
    body = {
        "type": PROBLEM_BASE + ("batch-partially-rejected" if done else "validation-error"),
        "title": f"Some {noun} were rejected" if done else f"No {noun[:-1]} was accepted",
        "status": status,
        "detail": f"{len(done)} accepted, {len(errors)} rejected; see `errors` by index.",
        "accepted": done,
        "errors": errors,
    }
    return status, body, PROBLEM_JSON


def _replay(stored: Any, request_hash: str, body: Any) -> Response:
    if stored.request_hash != request_hash and stored.request_hash != _legacy_request_hash(body):
        raise ProblemError(
            422,
            "This Idempotency-Key was already used with a different body.",
            type_="idempotency-key-reused",
        )
    return JSONResponse(
        stored.body,
        status_code=stored.status_code,
        media_type=stored.content_type,
        headers={"Idempotent-Replayed": "true"},
    )
