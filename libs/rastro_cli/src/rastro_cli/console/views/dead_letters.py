"""The dead-letter browser: filters, counts grouped by reason and service, one dead letter with its
payload and replays, and replay (dry run first, always with a reason, kept in the audit trail).

List and detail re-read themselves every few seconds: a replay's effect (status ``replayed``, or
``failed_after_replay``) shows without a reload.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.responses import Response

from rastro_cli.console.upstream import segment
from rastro_cli.console.visit import Visit

__all__ = ["dead_letter_page", "dead_letter_panel", "dead_letters_page", "dead_letters_panel", "replay"]

FILTERS = ("service", "reason", "status", "q", "cursor")
STATUSES = ("new", "replayed", "failed_after_replay", "purged")
REASONS = (
    "invalid_json",
    "schema_violation",
    "unsupported_type",
    "unknown_tenant",
    "unmapped_carrier_code",
    "unknown_carrier",
    "handler_error",
    "retries_exhausted",
)
SERVICES = ("ingest", "normalization", "eta", "notification", "dlq-replay")


def _filters(visit: Visit) -> dict[str, str]:
    query = visit.request.query_params
    return {k: query.get(k, "").strip() for k in FILTERS}


async def _listing(visit: Visit) -> dict[str, Any]:
    filters = _filters(visit)
    params = {**visit.tenant_params(), **filters}
    stats_params = {k: v for k, v in params.items() if k != "cursor"}
    groups = ["reason", "service"] + (["tenant"] if visit.session.identity.operator else [])
    listed, *stats = await asyncio.gather(
        visit.api.call("GET", "dlq-replay", "/v1/dead-letters", visit.key, {**params, "limit": "50"}),
        *(
            visit.api.call(
                "GET", "dlq-replay", "/v1/dead-letters/stats", visit.key, {**stats_params, "group_by": g}
            )
            for g in groups
        ),
    )
    return {"filters": filters, "listed": listed, "stats": dict(zip(groups, stats, strict=True))}


async def dead_letters_page(visit: Visit) -> Response:
    context = await _listing(visit)
    return visit.render("dead_letters.html", statuses=STATUSES, reasons=REASONS, services=SERVICES, **context)


async def dead_letters_panel(visit: Visit) -> Response:
    return visit.render("_dead_letters_panel.html", **(await _listing(visit)))


async def _letter(visit: Visit) -> dict[str, Any]:
    letter_id = visit.request.path_params["letter_id"]
    answer = await visit.api.call("GET", "dlq-replay", f"/v1/dead-letters/{segment(letter_id)}", visit.key)
    value = answer.body.get("value") if answer.ok and isinstance(answer.body, dict) else None
    shown = json.dumps(value, indent=2, ensure_ascii=False) if value is not None else ""
    return {"letter_id": letter_id, "letter": answer, "value": shown}


async def dead_letter_page(visit: Visit) -> Response:
    context = await _letter(visit)
    return visit.render("dead_letter.html", 404 if context["letter"].status == 404 else 200, **context)


async def dead_letter_panel(visit: Visit) -> Response:
    return visit.render("_dead_letter_panel.html", **(await _letter(visit)))


async def replay(visit: Visit) -> Response:
    """``action=dry-run`` asks what would be replayed; ``action=replay`` sends it back. Both need a reason.
    htmx swaps the answer in beside the form; without JavaScript the whole page comes back with it."""
    letter_id = visit.request.path_params["letter_id"]
    form = await visit.request.form()
    reason = str(form.get("reason") or "").strip()
    result: dict[str, Any] = {"dry_run": form.get("action") != "replay", "reason": reason, "answer": None}
    if not reason:
        result["error"] = "Give a reason: it goes into the audit trail."
    else:
        body = {"ids": [letter_id], "reason": reason, "dry_run": result["dry_run"]}
        result["answer"] = await visit.api.call(
            "POST", "dlq-replay", "/v1/dead-letters/replay", visit.key, json=body
        )
    if visit.request.headers.get("hx-request"):
        return visit.render("_replay_result.html", result=result)
    return visit.render("dead_letter.html", result=result, **(await _letter(visit)))
