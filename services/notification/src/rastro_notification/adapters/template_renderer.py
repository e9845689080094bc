"""Rendering customer messages and owner alerts from Jinja2 templates.

The defaults ship as files (``rastro_notification/templates/<locale>.toml``, one table per milestone with
``subject``, ``body`` and ``short``); a tenant's override (``notice_templates``) replaces one milestone in
one locale. Templates are tenant input, so they run in Jinja2's ``SandboxedEnvironment`` (no attribute
access to internals, no imports) with ``StrictUndefined`` off — an unknown variable renders empty — and
output is plain text (e-mail text part, SMS), so nothing is HTML-escaped.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from rastro_notification.domain.milestones import LOCALES

__all__ = [
    "PARTS",
    "InvalidTemplate",
    "RenderedNotice",
    "check_template",
    "default_template",
    "render_notice",
]

PARTS = ("subject", "body", "short")
MAX_PART_LENGTH = 20_000
_DATE_FORMATS = {"pt-BR": ("%d/%m/%Y", "%d/%m/%Y %H:%M"), "en": ("%Y-%m-%d", "%Y-%m-%d %H:%M")}
_DATE_FIELDS = ("expected_date", "previous_expected_date")
_TIME_FIELDS = ("occurred_at", "disabled_at", "failing_since")


class InvalidTemplate(ValueError):
    """A template that does not compile or render."""


RenderedNotice = dict[str, str]


@functools.cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


@functools.cache
def _defaults(locale: str) -> dict[str, dict[str, str]]:
    text = resources.files("rastro_notification").joinpath(f"templates/{locale}.toml").read_text("utf-8")
    return {
        name: {p: str(table[p]).strip("\n") for p in PARTS} for name, table in tomllib.loads(text).items()
    }


def default_template(milestone: str, locale: str) -> dict[str, str] | None:
    return _defaults(locale).get(milestone) if locale in LOCALES else None


def _format(context: Mapping[str, Any], locale: str, time_zone: str) -> dict[str, Any]:
    """Dates and times as the locale writes them, times in the tenant's zone."""
    day_fmt, time_fmt = _DATE_FORMATS.get(locale, _DATE_FORMATS["en"])
    zone = ZoneInfo(time_zone)
    shown = dict(context)
    for name in _DATE_FIELDS:
        if isinstance(value := shown.get(name), str) and value:
            shown[name] = date.fromisoformat(value).strftime(day_fmt)
    for name in _TIME_FIELDS:
        if isinstance(value := shown.get(name), str) and value:
            shown[name] = datetime.fromisoformat(value).astimezone(zone).strftime(time_fmt)
    return shown


def render_parts(parts: Mapping[str, str], context: Mapping[str, Any]) -> RenderedNotice:
    env = _environment()
    try:
        rendered = {p: env.from_string(parts[p]).render(**context).strip() for p in PARTS}
    except TemplateError as exc:
        raise InvalidTemplate(f"{type(exc).__name__}: {exc}") from exc
    rendered["subject"] = " ".join(rendered["subject"].split())  # one header line
    return rendered


def render_notice(
    milestone: str,
    locale: str,
    context: Mapping[str, Any],
    *,
    time_zone: str,
    override: Mapping[str, str] | None = None,
) -> RenderedNotice:
    """Subject, body and short text of one notice. A broken tenant override falls back to the default
    (the caller logs it) rather than losing the message."""
    shown = _format(context, locale, time_zone)
    if override is not None:
        try:
            return render_parts(override, shown)
        except InvalidTemplate:
            pass
    parts = default_template(milestone, locale) or default_template(milestone, LOCALES[0])
    if parts is None:
        raise InvalidTemplate(f"no template for {milestone!r}")
    return render_parts(parts, shown)


SAMPLE_CONTEXT: dict[str, Any] = {
    "tracking_number": "AA123456785BR",
    "carrier": "correios",
    "status": "delivered",
    "substatus": "delivered.signed",
    "description": "Objeto entregue ao destinatário",
    "occurred_at": "23/11/2026 14:05",
    "city": "São Paulo",
    "state": "SP",
    "recipient_name": "Maria",
    "expected_date": "01/12/2026",
    "previous_expected_date": "28/11/2026",
    "tracking_url": "https://shop.example/track/AA123456785BR",
}


def check_template(parts: Mapping[str, str]) -> RenderedNotice:
    """Compile and render ``parts`` with a sample shipment; raises ``InvalidTemplate``."""
    for part in PARTS:
        if not isinstance(parts.get(part), str) or len(parts[part]) > MAX_PART_LENGTH:
            raise InvalidTemplate(f"{part} is text of at most {MAX_PART_LENGTH} characters")
    rendered = render_parts(parts, SAMPLE_CONTEXT)
    if not rendered["subject"] or not rendered["body"]:
        raise InvalidTemplate("subject and body may not render empty")
    return rendered
