"""How stored bytes are shown to people: as JSON where they parse, as text where they decode, else base64.

The bytes themselves are never changed; each shown value says which encoding it is in, so a client can
recover the exact bytes — except personal data (docs/privacy.md): a JSON value is shown with its personal
fields masked (``rastro_events.personal.redact``) and text with e-mail addresses and documents masked.
Replays send the stored bytes, never what is shown.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Literal

from rastro_dlq_replay.domain.dead_letter import Headers
from rastro_events.personal import redact, scrub_text

__all__ = ["Shown", "show_bytes", "show_headers", "show_text"]

Encoding = Literal["json", "utf-8", "base64"]


@dataclass(frozen=True)
class Shown:
    value: Any
    encoding: Encoding | None  # None: the bytes were absent (a null key, a tombstone)


def show_text(raw: bytes | None) -> Shown:
    """UTF-8 text, or base64 (keys and header values)."""
    if raw is None:
        return Shown(None, None)
    try:
        return Shown(raw.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        return Shown(base64.b64encode(raw).decode("ascii"), "base64")


def show_bytes(raw: bytes | None) -> Shown:
    """JSON, else UTF-8 text, else base64 (record values); personal data masked."""
    text = show_text(raw)
    if text.encoding != "utf-8":
        return text
    try:
        return Shown(redact(json.loads(text.value, parse_constant=_reject_constant)), "json")
    except (ValueError, RecursionError):  # RecursionError: nesting too deep to show as JSON
        return Shown(scrub_text(text.value), "utf-8")


def show_headers(headers: Headers) -> list[dict[str, Any]]:
    shown = []
    for name, value in headers:
        text = show_text(value)
        shown.append({"name": name, "value": text.value, "encoding": text.encoding})
    return shown


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; shown as the text they are.
    raise ValueError(name)
