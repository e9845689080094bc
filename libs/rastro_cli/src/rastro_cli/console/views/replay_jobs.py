"""Replay by filter: everything the dead-letter list's filters select, as one rate-limited, resumable
replay job of dlq-replay (dry run first: how many, of which service and reason), then its progress,
re-read every few seconds until it completes."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from rastro_cli.console.upstream import segment
from rastro_cli.console.visit import Visit

__all__ = ["replay_by_filter", "replay_job_panel"]

FILTER_FIELDS = ("service", "reason", "q")


def _filter(form: Any, visit: Visit) -> dict[str, Any]:
    """The list's filters (``filter_*`` fields: ``reason`` is the replay's own) as dlq-replay's filter
    body; the operator's tenant comes from the session."""
    chosen: dict[str, Any] = {k: str(form.get(f"filter_{k}") or "").strip() or None for k in FILTER_FIELDS}
    status = str(form.get("filter_status") or "").strip()
    chosen["status"] = [status] if status else None
    chosen.update(visit.tenant_params())
    return {k: v for k, v in chosen.items() if v is not None}


async def replay_by_filter(visit: Visit) -> Response:
    form = await visit.request.form()
    reason = str(form.get("reason") or "").strip()
    dry_run = form.get("action") != "replay"
    job: dict[str, Any] = {"dry_run": dry_run, "reason": reason, "answer": None, "error": None}
    if not reason:
        job["error"] = "Give a reason: it goes into the audit trail."
    else:
        body = {"filter": _filter(form, visit), "reason": reason, "dry_run": dry_run}
        job["answer"] = await visit.api.call(
            "POST", "dlq-replay", "/v1/dead-letters/replay", visit.key, json=body
        )
    return visit.render("_replay_job.html", job=job)


async def replay_job_panel(visit: Visit) -> Response:
    job_id = visit.request.path_params["job_id"]
    answer = await visit.api.call("GET", "dlq-replay", f"/v1/replay-jobs/{segment(job_id)}", visit.key)
    return visit.render("_replay_job_progress.html", job_id=job_id, answer=answer)
