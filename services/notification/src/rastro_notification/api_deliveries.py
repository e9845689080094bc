"""What happened to a subscription's messages: messages, every attempt, and resending one.

Lists are newest first; ``next_cursor`` goes on to older items.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rastro_kit import audit
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError
from rastro_kit.logs import get_logger
from rastro_notification.adapters import message_log
from rastro_notification.api import MANAGE, READ, TENANT, owned_subscription, pool_of

__all__ = ["router"]

log = get_logger(__name__)
router = APIRouter(tags=["deliveries"])
LIMIT = Query(default=50, ge=1, le=200)
MessageStatus = Literal["pending", "delivered", "failed"]


@router.get("/v1/subscriptions/{sub_id}/messages", summary="The subscription's messages, newest first")
async def list_messages(
    request: Request,
    sub_id: str,
    principal: Principal = READ,
    tenant: str | None = TENANT,
    status: MessageStatus | None = None,
    cursor: str | None = None,
    limit: int = LIMIT,
) -> Any:
    await owned_subscription(request, sub_id, principal, tenant)
    rows = await message_log.list_messages(pool_of(request), sub_id, status, cursor, limit)
    return {
        "items": [r.public() for r in rows],
        "next_cursor": rows[-1].row["id"] if len(rows) == limit else None,
    }


@router.get("/v1/subscriptions/{sub_id}/messages/{message_id}", summary="One message with its attempts")
async def get_message(
    request: Request, sub_id: str, message_id: str, principal: Principal = READ, tenant: str | None = TENANT
) -> Any:
    await owned_subscription(request, sub_id, principal, tenant)
    pool = pool_of(request)
    message = await message_log.get_message(pool, sub_id, message_id)
    if message is None:
        raise ProblemError(404, "Not found.")
    attempts = await message_log.list_attempts(pool, sub_id, message_id, None, 200)
    return {**message.public(), "attempt_log": attempts}


@router.get(
    "/v1/subscriptions/{sub_id}/attempts",
    summary="Every delivery attempt: time, status code, latency, response excerpt, error, outcome",
)
async def list_attempts(
    request: Request,
    sub_id: str,
    principal: Principal = READ,
    tenant: str | None = TENANT,
    message_id: str | None = None,
    cursor: str | None = None,
    limit: int = LIMIT,
) -> Any:
    await owned_subscription(request, sub_id, principal, tenant)
    before = _attempt_cursor(cursor)
    items = await message_log.list_attempts(pool_of(request), sub_id, message_id, before, limit)
    return {"items": items, "next_cursor": str(items[-1]["id"]) if len(items) == limit else None}


@router.post(
    "/v1/subscriptions/{sub_id}/messages/{message_id}/resend",
    status_code=202,
    summary="Send a message again now, with a fresh retry schedule and the same webhook-id",
    responses={409: {"description": "the message is being delivered right now"}},
)
async def resend_message(
    request: Request, sub_id: str, message_id: str, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Any:
    sub = await owned_subscription(request, sub_id, principal, tenant)
    async with pool_of(request).acquire() as conn, conn.transaction():
        message = await message_log.resend_message(conn, sub_id, message_id)
        if message is not None and not message.in_flight:
            await audit.record(
                conn,
                principal,
                request,
                "message.resend",
                message_id,
                {"subscription_id": sub_id},
                tenant_id=sub.tenant_id,
            )
    if message is None:
        raise ProblemError(404, "Not found.")
    if message.in_flight:
        raise ProblemError(
            409,
            "The message is being delivered right now; try again in a moment.",
            type_="delivery-in-flight",
        )
    return {**message.public(), "subscription_enabled": sub.enabled}


class RecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: AwareDatetime = Field(description="failed messages created at or after this time")
    until: AwareDatetime | None = Field(default=None, description="… and before this time (default: now)")


@router.post(
    "/v1/subscriptions/{sub_id}/recover",
    status_code=202,
    summary="Queue again every message that failed in a time window (same webhook-ids, fresh schedule)",
)
async def recover_messages(
    request: Request, sub_id: str, body: RecoverIn, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Any:
    sub = await owned_subscription(request, sub_id, principal, tenant)
    if body.until is not None and body.until <= body.since:
        raise ProblemError(
            422,
            "until must be later than since.",
            type_="validation-error",
            errors=[{"field": "until", "message": "not later than since"}],
        )
    async with pool_of(request).acquire() as conn, conn.transaction():
        count = await message_log.recover_messages(conn, sub_id, body.since, body.until)
        window = {"since": body.since.isoformat(), "until": body.until.isoformat() if body.until else None,
                  "recovered": count}  # fmt: skip
        await audit.record(
            conn, principal, request, "messages.recover", sub_id, window, tenant_id=sub.tenant_id
        )
    log.info("messages_recovered", subscription_id=sub_id, count=count)
    return {"recovered": count, "subscription_enabled": sub.enabled}


def _attempt_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise ProblemError(
            422,
            "cursor is the next_cursor of a previous page.",
            type_="validation-error",
            errors=[{"field": "cursor", "message": "not a cursor"}],
        )
    return int(cursor)
