"""Validation of what a subscriber gives us, as problem+json 422 answers with the reason."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rastro_kit.http import ProblemError
from rastro_notification.domain.custom_headers import InvalidHeaders, validate_headers
from rastro_notification.domain.endpoint_policy import EndpointRejected, validate_endpoint_url
from rastro_notification.domain.event_filter import InvalidEventFilter, validate_subscribable
from rastro_notification.domain.signing import InvalidSecret, decode_secret
from rastro_notification.settings import NotificationSettings

__all__ = [
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "check_carriers",
    "check_endpoint_url",
    "check_event_types",
    "check_headers",
    "check_secret",
    "invalid",
]

MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64  # Standard Webhooks' bounds
_CARRIER = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def invalid(field: str, type_: str, message: str) -> ProblemError:
    return _invalid(field, type_, message)


def _invalid(field: str, type_: str, message: str) -> ProblemError:
    return ProblemError(422, message, type_=type_, errors=[{"field": field, "message": message}])


def check_endpoint_url(url: str, settings: NotificationSettings) -> str:
    """The URL if the endpoint policy accepts it. The name is not resolved here (it may not exist yet):
    the sender resolves it, and checks every address, before each attempt."""
    try:
        return validate_endpoint_url(
            url, allow_private=settings.private_urls_allowed, require_https=settings.require_https
        )
    except EndpointRejected as exc:
        raise _invalid("url", "invalid-endpoint", f"The endpoint URL is refused: {exc.reason}.") from None


def check_event_types(event_types: Sequence[str]) -> list[str]:
    try:
        return list(validate_subscribable(event_types))
    except InvalidEventFilter as exc:
        raise _invalid("event_types", "invalid-event-types", str(exc)) from None


def check_secret(secret: str) -> str:
    try:
        size = len(decode_secret(secret))
    except InvalidSecret as exc:
        raise _invalid("secret", "invalid-secret", str(exc)) from None
    if not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise _invalid(
            "secret",
            "invalid-secret",
            f"a signing secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, this one {size}",
        )
    return secret


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    try:
        return validate_headers(headers)
    except InvalidHeaders as exc:
        raise _invalid("headers", "invalid-headers", str(exc)) from None


def check_carriers(carriers: Sequence[str] | None) -> list[str] | None:
    """Carrier ids as normalization writes them (lower case); None: every carrier."""
    if carriers is None:
        return None
    cleaned = sorted({c.strip().lower() for c in carriers})
    if not cleaned or not all(_CARRIER.fullmatch(c) for c in cleaned):
        raise _invalid("carriers", "invalid-carriers", "carriers is a non-empty list of carrier ids, or null")
    return cleaned
