"""The check every 4xx answer must pass: an RFC 9457 problem (``application/problem+json`` with
``type``, ``title`` and ``status``), never FastAPI's or Starlette's default error shape."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["problem_json_4xx", "problem_violation"]

PROBLEM_JSON = "application/problem+json"


def problem_violation(status: int, content_type: str | None, body: bytes) -> str | None:
    """Why a response breaks the rule, or None when it keeps it (or is not a 4xx)."""
    if not 400 <= status < 500:
        return None
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != PROBLEM_JSON:
        return f"{status} answered as {content_type or 'no content type'}, not {PROBLEM_JSON}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"{status} problem body is not JSON: {body[:200]!r}"
    if not isinstance(document, dict):
        return f"{status} problem body is not an object: {body[:200]!r}"
    missing = [f for f in ("type", "title", "status") if f not in document]
    if missing:
        return f"{status} problem lacks {', '.join(missing)}: {body[:200]!r}"
    if document["status"] != status:
        return f"problem says status {document['status']!r}, the response is {status}"
    return None


def problem_json_4xx(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schemathesis check, ``(ctx, response, case)``: every 4xx answer is a problem document."""
    content_type = (response.headers.get("content-type") or [None])[0]  # lower-case keys, list values
    violation = problem_violation(response.status_code, content_type, response.content)
    if violation:
        raise AssertionError(violation)
    return None
