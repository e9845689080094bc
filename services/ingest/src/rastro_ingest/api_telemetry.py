"""``POST /v1/telemetry``: GPS positions of a tenant's own fleet, in batches, accepted once in the outbox.

Each position becomes one ``telemetry.position`` event on ``rastro.telemetry.v1``, keyed
``<tenant>/<vehicle id>``. Its event id is derived from the tenant, the vehicle and the instant of the fix,
and its CloudEvents ``time`` is that instant, so a retried batch yields the same records and consumers'
inboxes apply each fix once. Answers follow ``POST /v1/events``: 202 with the ids, 207 problem+json with
the rejected positions by index, 422 when none is valid. Logs carry counts, never coordinates.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from prometheus_client import Counter
from pydantic import ValidationError

from rastro_events import TelemetryPosition
from rastro_events.encoding import HEADER_NAMES, encode_new_event
from rastro_ingest.api_events import (
    RATE_LIMIT_HEADERS,
    acting_tenant,
    batch_answer,
    problem_responses,
    store_batch,
)
from rastro_ingest.domain.events_in import field_error
from rastro_ingest.rate_limit import rate_limited
from rastro_kit.auth import Principal
from rastro_kit.http import PROBLEM_BASE, PROBLEM_JSON, ProblemError
from rastro_kit.logs import get_logger
from rastro_kit.openapi_problems import PROBLEM_REF
from rastro_kit.outbox import OutboxRow

__all__ = ["MAX_FUTURE", "MAX_POSITIONS", "POSITIONS", "position_event_id", "read_positions", "router"]

log = get_logger(__name__)
router = APIRouter(tags=["telemetry"])
WRITE_TELEMETRY = rate_limited("telemetry:write")  # the fleet role's scope; events:write includes it
MAX_POSITIONS = 5000
MAX_FUTURE = timedelta(minutes=5)  # device clocks drift a little; a fix from further ahead is wrong
POSITIONS = Counter(
    "rastro_telemetry_positions_total", "Positions posted to POST /v1/telemetry, by outcome", ["outcome"]
)
_VALIDATE = TelemetryPosition.__pydantic_validator__.validate_python
_NAMESPACE = uuid.UUID("0c6b1f4e-8d2a-5f3b-9e71-4a5d6c7b8e90")  # fixed forever: stored ids depend on it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_VARIANT = "89ab"

Indexed = tuple[int, TelemetryPosition]
Rejected = tuple[int, list[dict[str, str]]]


def position_event_id(tenant_id: str, position: TelemetryPosition) -> str:
    """``uuid5(namespace, "<tenant>␟<vehicle>␟<µs since epoch>")``: one id per fix, whatever offset the
    device wrote it with. The UUID is formatted from the SHA-1 directly (``uuid.uuid5``'s own result,
    about 3x faster: one per position is on the hot path)."""
    micros = (position.recorded_at - _EPOCH) // _MICROSECOND
    name = f"{tenant_id}\x1f{position.vehicle_id}\x1f{micros}".encode()
    h = hashlib.sha1(_NAMESPACE.bytes + name, usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def read_positions(items: Sequence[Any], now: datetime) -> tuple[list[Indexed], list[Rejected]]:
    """Each item validated alone (one bad fix never spoils its neighbours) by ``TelemetryPosition``
    itself, plus what the model cannot know: the time now, and that Postgres-backed readers store no NUL."""
    latest = now + MAX_FUTURE
    accepted: list[Indexed] = []
    rejected: list[Rejected] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            rejected.append((i, [{"field": "(position)", "message": "a position must be a JSON object"}]))
            continue
        try:
            p = _VALIDATE(item)
        except ValidationError as exc:
            rejected.append((i, [field_error(e, "(position)") for e in exc.errors()]))
            continue
        if p.recorded_at > latest:
            rejected.append(
                (i, [{"field": "recorded_at", "message": "is more than 5 minutes in the future"}])
            )
        elif "\x00" in p.vehicle_id:
            rejected.append((i, [{"field": "vehicle_id", "message": "must not contain NUL characters"}]))
        else:
            accepted.append((i, p))
    return accepted, rejected


def position_rows(
    accepted: Sequence[Indexed], tenant_id: str, traceparent: str | None
) -> tuple[list[str], list[OutboxRow]]:
    source = f"/tenants/{tenant_id}/api"
    ids: list[str] = []
    rows: list[OutboxRow] = []
    for _, p in accepted:
        e = encode_new_event(
            p,
            tenant_id=tenant_id,
            source=source,
            time=p.recorded_at,
            event_id=position_event_id(tenant_id, p),
            traceparent=traceparent,
        )
        ids.append(e.id)
        rows.append((e.topic, e.key, e.value, HEADER_NAMES, e.header_values))
    return ids, rows


EXAMPLE_POSITION = {
    "vehicle_id": "VAN-0042",
    "recorded_at": "2026-11-23T14:05:11.250-03:00",
    "latitude": -23.55052,
    "longitude": -46.633308,
    "speed_kmh": 38.5,
    "heading": 187.0,
    "accuracy_m": 4.5,
}
EXAMPLE_ACCEPTED = {"accepted": 1, "events": [{"index": 0, "id": "6f1c2a0e-55d4-5b8e-9c1a-2d3e4f5a6b7c"}]}
EXAMPLE_PARTIAL = {
    "type": PROBLEM_BASE + "batch-partially-rejected",
    "title": "Some positions were rejected",
    "status": 207,
    "detail": "1 accepted, 1 rejected; see `errors` by index.",
    "accepted": [{"index": 0, "id": "6f1c2a0e-55d4-5b8e-9c1a-2d3e4f5a6b7c"}],
    "errors": [
        {"index": 1, "errors": [{"field": "latitude", "message": "Input should be less than or equal to 90"}]}
    ],
}
_DOCUMENTED = problem_responses(401, 403, 404, 422, 429, 503)
_DOCUMENTED[400] = {
    "description": "Bad Request",
    "content": {
        PROBLEM_JSON: {
            "schema": PROBLEM_REF,
            "example": {
                "type": PROBLEM_BASE + "invalid-json",
                "title": "Bad Request",
                "status": 400,
                "detail": "The body is not valid JSON.",
            },
        }
    },
}
_DOCUMENTED[413] = {
    "description": "Content Too Large",
    "content": {
        PROBLEM_JSON: {
            "schema": PROBLEM_REF,
            "example": {
                "type": PROBLEM_BASE + "batch-too-large",
                "title": "Content Too Large",
                "status": 413,
                "detail": "A batch holds at most 5000 positions; this one has 6000.",
            },
        }
    },
}


@router.post(
    "/v1/telemetry",
    status_code=202,
    summary="Publish GPS positions of the tenant's own fleet",
    description=(
        'Body: `{"positions": [...]}` or a bare array, at most 5,000 positions. Each has `vehicle_id`, '
        "`recorded_at` (with its UTC offset, at most 5 minutes ahead), `latitude`, `longitude`, "
        "`speed_kmh`, and optionally `heading` and `accuracy_m`. Positions go to `rastro.telemetry.v1` "
        "keyed `<tenant>/<vehicle_id>`; the event id is derived from tenant, vehicle and fix time, so a "
        "retried batch is applied once. 202: every position stored; 207 (problem+json): `accepted` and "
        "`errors` by index; 422: none valid. `Idempotency-Key` replays the first answer."
    ),
    responses={
        202: {
            "description": "every position accepted and stored; it will be published",
            "headers": {k: v for k, v in RATE_LIMIT_HEADERS.items() if k != "Retry-After"},
            "content": {"application/json": {"example": EXAMPLE_ACCEPTED}},
        },
        207: {
            "description": "some positions rejected: `accepted` and `errors` by index",
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF, "example": EXAMPLE_PARTIAL}},
        },
        **_DOCUMENTED,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": ["object", "array"], "description": '{"positions": [...]} or [...]'},
                    "examples": {"batch": {"value": {"positions": [EXAMPLE_POSITION]}}},
                }
            },
        }
    },
)
async def post_telemetry(
    request: Request,
    principal: Principal = WRITE_TELEMETRY,
    tenant: str | None = Query(default=None, description="operator and 3PL keys: the tenant to publish for"),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key", max_length=255),
    traceparent: str | None = Header(default=None),
) -> Response:
    tenant_id = acting_tenant(principal, tenant)
    body = await _json_body(request)
    accepted, rejected = read_positions(_items(body), datetime.now(UTC))
    # Encoded before the transaction, so it holds its connection only for the round trips.
    ids, rows = position_rows(accepted, tenant_id, traceparent)
    done = [{"index": i, "id": event_id} for (i, _), event_id in zip(accepted, ids, strict=True)]
    answer = batch_answer("positions", done, [{"index": i, "errors": errors} for i, errors in rejected])
    response = await store_batch(request, tenant_id, rows, answer, body, idempotency_key)
    POSITIONS.labels("accepted").inc(len(rows))
    POSITIONS.labels("rejected").inc(len(rejected))
    log.info("telemetry_accepted", tenant=tenant_id, accepted=len(rows), rejected=len(rejected))
    return response


async def _json_body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ProblemError(
            400,
            "The body is not valid JSON.",
            type_="invalid-json",
            errors=[{"field": "(body)", "message": str(exc)}],
        ) from None


def _items(body: Any) -> list[Any]:
    items = body.get("positions") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise ProblemError(
            422,
            'The body must be {"positions": [...]} or an array of positions.',
            type_="validation-error",
            errors=[{"field": "positions", "message": "must be an array"}],
        )
    if not items:
        raise ProblemError(
            422,
            "The batch is empty.",
            type_="validation-error",
            errors=[{"field": "positions", "message": "must not be empty"}],
        )
    if len(items) > MAX_POSITIONS:
        raise ProblemError(
            413,
            f"A batch holds at most {MAX_POSITIONS} positions; this one has {len(items)}.",
            type_="batch-too-large",
        )
    return items
