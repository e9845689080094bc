"""Custom headers a subscriber asks us to send with every webhook (e.g. an API key of its gateway).

Names are HTTP tokens; values are visible ASCII and spaces. Headers that would change how the request
is framed, routed or signed are refused: the Standard Webhooks ones (``webhook-*``), ``content-*``,
``host``, ``transfer-encoding``, ``connection`` and the other hop-by-hop headers, ``cookie``,
``user-agent`` and ``accept-encoding`` (ours), and proxy headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["MAX_HEADERS", "InvalidHeaders", "validate_headers"]

MAX_HEADERS = 20
MAX_VALUE_LENGTH = 1024
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}")
_VALUE = re.compile(r"[\x20-\x7e]*")
_RESERVED = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        "cookie",
        "user-agent",
        "accept-encoding",
        "forwarded",
    }
)
_RESERVED_PREFIXES = ("webhook-", "proxy-", "x-forwarded-", "content-")


class InvalidHeaders(ValueError):
    """Custom headers we refuse to send; the message says which and why."""


def validate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with lower-cased names; raises ``InvalidHeaders``."""
    if len(headers) > MAX_HEADERS:
        raise InvalidHeaders(f"at most {MAX_HEADERS} custom headers")
    clean: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if not _TOKEN.fullmatch(name):
            raise InvalidHeaders(f"{name!r} is not a valid header name")
        if lowered in _RESERVED or lowered.startswith(_RESERVED_PREFIXES):
            raise InvalidHeaders(f"header {lowered!r} is set by Rastro and may not be overridden")
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH or not _VALUE.fullmatch(value):
            raise InvalidHeaders(
                f"header {lowered!r}: the value is visible ASCII, at most {MAX_VALUE_LENGTH} characters"
            )
        if lowered in clean:
            raise InvalidHeaders(f"header {lowered!r} is given twice")
        clean[lowered] = value
    return clean
