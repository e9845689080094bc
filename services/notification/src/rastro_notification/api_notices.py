"""Customer notifications API (``/v1/notifications/…``): the tenant's settings (time zone, quiet hours,
locale, alert e-mail, messaging provider), template overrides, shipment recipients, opt-outs and the
log of notices sent. Scope ``subscriptions:manage``; an operator key names the tenant with ``?tenant=``.

Recipients' addresses are personal data: accepted and returned to the tenant that registered them,
never logged, shown masked in the notice log.
"""

from __future__ import annotations

import hashlib
from datetime import time
from typing import Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from rastro_kit import audit
from rastro_kit.auth import Principal
from rastro_kit.http import ProblemError, tenant_scope
from rastro_notification.adapters import customer_store, notice_store
from rastro_notification.adapters.template_renderer import (
    InvalidTemplate,
    check_template,
    default_template,
)
from rastro_notification.api import MANAGE, READ, TENANT, pool_of
from rastro_notification.api_checks import check_endpoint_url, check_secret, invalid
from rastro_notification.domain.milestones import CUSTOMER_MILESTONES, LOCALES
from rastro_notification.domain.quiet_hours import InvalidTimeZone, check_time_zone
from rastro_notification.domain.recipients import InvalidAddress, normalize_email, normalize_phone
from rastro_notification.domain.signing import generate_secret

__all__ = ["router"]

router = APIRouter(prefix="/v1/notifications", tags=["customer notifications"])
TEMPLATE_NAMES = (*CUSTOMER_MILESTONES, "endpoint_disabled")
TRACKING = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: time = Field(examples=["21:00"])
    end: time = Field(examples=["08:00"])


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_zone: str = Field(default="America/Sao_Paulo", max_length=64)
    quiet_hours: QuietHoursIn | None = None
    default_locale: str = "pt-BR"
    alert_email: str | None = Field(default=None, max_length=254)
    tracking_url: str | None = Field(
        default=None, max_length=1000, examples=["https://shop.example/t/{tracking_number}"]
    )
    messaging_url: str | None = Field(default=None, max_length=4096)
    messaging_secret: str | None = None


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str
    body: str
    short: str


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    locale: str | None = Field(default=None, max_length=16)


class OptOutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(max_length=254, description="an e-mail address or a phone number")
    opted_out: bool = True


def _tenant(principal: Principal, tenant: str | None) -> str:
    tenant_id = tenant_scope(principal, tenant)
    if tenant_id is None:
        raise ProblemError(
            422, "An operator key must name the tenant: ?tenant=<id>.", type_="tenant-required"
        )
    return tenant_id


def _settings_out(values: dict[str, Any]) -> dict[str, Any]:
    start, end = values.pop("quiet_start"), values.pop("quiet_end")
    quiet = None if start is None else {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    return {**values, "quiet_hours": quiet}


@router.get("/settings", summary="The tenant's notification settings")
async def get_settings(request: Request, principal: Principal = READ, tenant: str | None = TENANT) -> Any:
    return _settings_out(await customer_store.get_settings(pool_of(request), _tenant(principal, tenant)))


@router.put("/settings", summary="Replace the tenant's notification settings")
async def put_settings(
    request: Request, body: SettingsIn, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Any:
    tenant_id = _tenant(principal, tenant)
    try:
        check_time_zone(body.time_zone)
    except InvalidTimeZone as exc:
        raise invalid("time_zone", "invalid-time-zone", str(exc)) from None
    if body.default_locale not in LOCALES:
        raise invalid("default_locale", "invalid-locale", f"one of {list(LOCALES)}")
    values: dict[str, Any] = {
        "time_zone": body.time_zone,
        "quiet_start": body.quiet_hours.start if body.quiet_hours else None,
        "quiet_end": body.quiet_hours.end if body.quiet_hours else None,
        "default_locale": body.default_locale,
        "alert_email": _email(body.alert_email, "alert_email"),
        "tracking_url": body.tracking_url,
    }
    if body.tracking_url is not None and not body.tracking_url.startswith(("https://", "http://")):
        raise invalid("tracking_url", "invalid-url", "tracking_url is an http(s) URL")
    if body.messaging_url is not None:
        values["messaging_url"] = check_endpoint_url(body.messaging_url, request.app.state.runtime.settings)
        values["messaging_secret"] = (
            check_secret(body.messaging_secret) if body.messaging_secret else generate_secret()
        )
    async with pool_of(request).acquire() as conn, conn.transaction():
        saved = await customer_store.put_settings(conn, tenant_id, values)
        summary = {"fields": sorted(values), "time_zone": body.time_zone, "locale": body.default_locale}
        await audit.record(
            conn, principal, request, "notice_settings.put", None, summary, tenant_id=tenant_id
        )
    return _settings_out(saved)


@router.get("/templates", summary="Every template in effect: the tenant's overrides, else the defaults")
async def list_templates(request: Request, principal: Principal = READ, tenant: str | None = TENANT) -> Any:
    overrides = await customer_store.templates_of(pool_of(request), _tenant(principal, tenant))
    items = []
    for milestone in TEMPLATE_NAMES:
        for locale in LOCALES:
            own = overrides.get((milestone, locale))
            parts = own or default_template(milestone, locale) or {}
            items.append(
                {"milestone": milestone, "locale": locale, "source": "tenant" if own else "default", **parts}
            )
    return {"items": items, "next_cursor": None}


def _template_key(milestone: str, locale: str) -> None:
    if milestone not in TEMPLATE_NAMES or locale not in LOCALES:
        raise ProblemError(404, f"Templates exist for {list(TEMPLATE_NAMES)} in {list(LOCALES)}.")


@router.put("/templates/{milestone}/{locale}", summary="Override one template; answers a rendered preview")
async def put_template(
    request: Request,
    milestone: str,
    locale: str,
    body: TemplateIn,
    principal: Principal = MANAGE,
    tenant: str | None = TENANT,
) -> Any:
    tenant_id = _tenant(principal, tenant)
    _template_key(milestone, locale)
    parts = body.model_dump()
    try:
        preview = check_template(parts)
    except InvalidTemplate as exc:
        raise invalid("body", "invalid-template", str(exc)) from None
    async with pool_of(request).acquire() as conn, conn.transaction():
        await customer_store.put_template(conn, tenant_id, milestone, locale, parts)
        await audit.record(
            conn, principal, request, "template.put", f"{milestone}/{locale}", tenant_id=tenant_id
        )
    return {"milestone": milestone, "locale": locale, "source": "tenant", **parts, "preview": preview}


@router.delete("/templates/{milestone}/{locale}", status_code=204, summary="Back to the default template")
async def delete_template(
    request: Request, milestone: str, locale: str, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Response:
    _template_key(milestone, locale)
    tenant_id = _tenant(principal, tenant)
    async with pool_of(request).acquire() as conn, conn.transaction():
        if not await customer_store.delete_template(conn, tenant_id, milestone, locale):
            raise ProblemError(404, "Not found.")
        await audit.record(
            conn, principal, request, "template.delete", f"{milestone}/{locale}", tenant_id=tenant_id
        )
    return Response(status_code=204)


@router.put("/recipients/{tracking_number}", summary="Who to notify about one shipment")
async def put_recipient(
    request: Request,
    body: RecipientIn,
    tracking_number: str = Path(pattern=TRACKING),
    principal: Principal = MANAGE,
    tenant: str | None = TENANT,
) -> Any:
    tenant_id = _tenant(principal, tenant)
    if body.email is None and body.phone is None:
        raise invalid("email", "recipient-unreachable", "give an email, a phone, or both")
    values = {
        "name": body.name,
        "email": _email(body.email, "email"),
        "phone": _phone(body.phone),
        "locale": body.locale,
    }
    async with pool_of(request).acquire() as conn, conn.transaction():
        saved = await customer_store.put_recipient(conn, tenant_id, tracking_number, values)
        given = {"fields": sorted(k for k, v in values.items() if v)}  # which fields, never their values
        await audit.record(
            conn, principal, request, "recipient.put", tracking_number, given, tenant_id=tenant_id
        )
    return saved


@router.get("/recipients/{tracking_number}", summary="The recipient registered for a shipment")
async def get_recipient(
    request: Request, tracking_number: str, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Any:
    found = await customer_store.get_recipient(pool_of(request), _tenant(principal, tenant), tracking_number)
    if found is None:
        raise ProblemError(404, "Not found.")
    found.pop("last_expected_date", None)
    return found


@router.delete("/recipients/{tracking_number}", status_code=204, summary="Forget a shipment's recipient")
async def delete_recipient(
    request: Request, tracking_number: str, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Response:
    tenant_id = _tenant(principal, tenant)
    async with pool_of(request).acquire() as conn, conn.transaction():
        if not await customer_store.delete_recipient(conn, tenant_id, tracking_number):
            raise ProblemError(404, "Not found.")
        await audit.record(conn, principal, request, "recipient.delete", tracking_number, tenant_id=tenant_id)
    return Response(status_code=204)


@router.put("/opt-outs", summary="Opt an address out of (or back into) customer messages")
async def put_opt_out(
    request: Request, body: OptOutIn, principal: Principal = MANAGE, tenant: str | None = TENANT
) -> Any:
    address = body.address.strip()
    normalized = _email(address, "address") if "@" in address else _phone(address)
    tenant_id = _tenant(principal, tenant)
    async with pool_of(request).acquire() as conn, conn.transaction():
        await customer_store.set_opt_out(conn, tenant_id, normalized or "", body.opted_out)
        ref = "sha256:" + hashlib.sha256((normalized or "").encode()).hexdigest()[:16]  # not the address
        opted = {"opted_out": body.opted_out}
        await audit.record(conn, principal, request, "opt_out.put", ref, opted, tenant_id=tenant_id)
    return {"opted_out": body.opted_out}


@router.get("/messages", summary="Customer messages and owner alerts, newest first (addresses masked)")
async def list_notices(
    request: Request,
    principal: Principal = READ,
    tenant: str | None = TENANT,
    tracking_number: str | None = None,
    cursor: str | None = None,
    limit: int = Query(default=50, ge=1, le=200),
) -> Any:
    items = await notice_store.list_notices(
        pool_of(request), tenant_scope(principal, tenant), tracking_number, cursor, limit
    )
    return {"items": items, "next_cursor": items[-1]["id"] if len(items) == limit else None}


def _email(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    try:
        return normalize_email(value)
    except InvalidAddress as exc:
        raise invalid(field, "invalid-address", str(exc)) from None


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_phone(value)
    except InvalidAddress as exc:
        raise invalid("phone", "invalid-address", str(exc)) from None
