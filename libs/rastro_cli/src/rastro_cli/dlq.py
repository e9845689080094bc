"""``rastro dlq …``: dead letters through dlq-replay's HTTP API — what is failing, since when, for whom,
why — and, once the cause is fixed, putting them back safely.

The URL defaults to ``http://127.0.0.1:8000`` (the ``make run`` gateway); the key to ``--api-key``, else
``RASTRO_API_KEY``, else ``RASTRO_ADMIN_API_KEY`` (also read from ``.rastro/demo.env``). Filters are the
same on every command: ``--service``, ``--error-class`` (the dead-letter reason, e.g.
``unmapped_carrier_code``), ``--tenant``, ``--event-type``, ``--since``, ``--until``, ``--search``.
``--reason`` is always *why* you replay or purge: it is kept in the audit trail.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.syntax import Syntax
from rich.table import Table

from rastro_cli.local_env import admin_api_key, problem_message

__all__ = ["dlq_app"]

dlq_app = typer.Typer(
    help="Dead letters: list, count, show, replay, purge, export; replay jobs and the audit trail.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)
DEFAULT_URL = "http://127.0.0.1:8000"

Url = Annotated[str, typer.Option("--url", envvar="RASTRO_BASE_URL", help="Rastro's base URL (the gateway)")]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="RASTRO_API_KEY",
        show_default=False,
        help="a key with dead-letters:manage (default: RASTRO_API_KEY, else the operator key)",
    ),
]
Service = Annotated[str | None, typer.Option("--service", help="the service that failed them")]
ErrorClass = Annotated[
    str | None, typer.Option("--error-class", "-e", help="the dead-letter reason, e.g. schema_violation")
]
Tenant = Annotated[str | None, typer.Option("--tenant", help="operator key only; a tenant key sees its own")]
EventType = Annotated[str | None, typer.Option("--event-type", help="e.g. rastro.tracking.raw.v1")]
Since = Annotated[str | None, typer.Option("--since", help="last failure at or after (ISO 8601)")]
Until = Annotated[str | None, typer.Option("--until", help="last failure before (ISO 8601)")]
Search = Annotated[str | None, typer.Option("--search", "-q", help="free text in error, subject, key, …")]
Why = Annotated[str, typer.Option("--reason", "-r", help="why (required): kept in the audit trail")]


class Api:
    """dlq-replay's HTTP API; any error answer ends the command with its problem detail."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url.rstrip("/")
        key = admin_api_key(api_key, option_env="RASTRO_API_KEY")
        self._headers = {"Authorization": f"Bearer {key}"}
        self._client = httpx.Client(base_url=self.url, timeout=30, trust_env=False)

    def call(self, method: str, path: str, *, params: Any = None, body: Any = None) -> Any:
        try:
            response = self._client.request(method, path, params=params, json=body, headers=self._headers)
        except httpx.TransportError as exc:
            _die(f"Cannot reach {self.url}: {exc}. Is the stack running (make run)?")
        if response.status_code >= 400:
            _fail(response)
        return response.json() if response.content else None

    def stream_lines(self, path: str, params: dict[str, Any]) -> Any:
        """JSON lines, split on newlines only (``iter_lines`` would also split on U+2028 and the like)."""
        try:
            with self._client.stream("GET", path, params=params, headers=self._headers) as response:
                if response.status_code >= 400:
                    response.read()
                    _fail(response)
                rest = b""
                for piece in response.iter_bytes():
                    *lines, rest = (rest + piece).split(b"\n")
                    yield from (line.decode() for line in lines)
                if rest:
                    yield rest.decode()
        except httpx.TransportError as exc:
            _die(f"Cannot reach {self.url}: {exc}. Is the stack running (make run)?")


def _die(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(code)


def _fail(response: httpx.Response) -> NoReturn:
    _die(f"Error {response.status_code}: {problem_message(response)}")


def _filters(**given: str | None) -> dict[str, str]:
    names = {"error_class": "reason", "search": "q"}
    return {names.get(k, k): v for k, v in given.items() if v}


def _short(text: str | None, width: int) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


@dlq_app.command("list")
def list_dead_letters(
    service: Service = None,
    error_class: ErrorClass = None,
    tenant: Tenant = None,
    event_type: EventType = None,
    since: Since = None,
    until: Until = None,
    search: Search = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="new, replayed, …")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="the next page, as printed")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List dead letters, newest failure first."""
    params: dict[str, Any] = _filters(
        service=service, error_class=error_class, tenant=tenant, event_type=event_type,
        since=since, until=until, search=search,
    )  # fmt: skip
    params.update(limit=limit, status=status or None, cursor=cursor)
    page = Api(url, api_key).call("GET", "/v1/dead-letters", params={k: v for k, v in params.items() if v})
    table = Table(
        "id", "last failure", "service", "reason", "tenant", "subject", "status", "replays", "error"
    )
    for d in page["items"]:
        table.add_row(
            d["id"], d["last_failed_at"][:19], d["service"], d["reason"], d["tenant"] or "-",
            _short(d["subject"], 40), d["status"], str(d["replay_count"]), _short(d["error_message"], 60),
        )  # fmt: skip
    console.print(table)
    if page["next_cursor"]:
        console.print(f"more: --cursor {page['next_cursor']}", highlight=False)


@dlq_app.command("stats")
def stats(
    service: Service = None,
    error_class: ErrorClass = None,
    tenant: Tenant = None,
    event_type: EventType = None,
    since: Since = None,
    until: Until = None,
    search: Search = None,
    top: Annotated[int, typer.Option("--top", min=1, help="groups shown per table")] = 5,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """What is failing: counts by reason, by service and by tenant (the top errors)."""
    api = Api(url, api_key)
    params = _filters(
        service=service, error_class=error_class, tenant=tenant, event_type=event_type,
        since=since, until=until, search=search,
    )  # fmt: skip
    for group_by in ("reason", "service", "tenant"):
        answer = api.call(
            "GET", "/v1/dead-letters/stats", params={**params, "group_by": group_by, "top": top}
        )
        table = Table(group_by, "count", title=f"top {top} by {group_by} (of {answer['total']:,})")
        for g in answer["groups"]:
            table.add_row(g["key"] or "(none)", f"{g['count']:,}")
        console.print(table)


@dlq_app.command("show")
def show(
    dead_letter_id: Annotated[str, typer.Argument(metavar="ID")],
    as_json: Annotated[bool, typer.Option("--json", help="the API's answer as it is")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """One dead letter: decoded body, headers, error, and its replays."""
    d = Api(url, api_key).call("GET", f"/v1/dead-letters/{dead_letter_id}")
    if as_json:
        console.print_json(data=d)
        return
    facts = Table(show_header=False, box=None)
    for name in ("id", "service", "reason", "status", "tenant", "subject", "event_type", "event_id",
                 "original_topic", "original_partition", "original_offset", "consumer_group", "attempts",
                 "first_failed_at", "last_failed_at", "replay_count"):  # fmt: skip
        facts.add_row(name, str(d[name]) if d[name] is not None else "-")
    facts.add_row("key", f"{d['key']} ({d['key_encoding']})" if d["key"] is not None else "-")
    console.print(facts)
    console.print(f"[bold]error:[/bold] {d['error_message']}", highlight=False)
    headers = Table("header", "value", title="headers")
    for h in d["headers"]:
        headers.add_row(h["name"], f"{h['value']}" + (" (base64)" if h["encoding"] == "base64" else ""))
    console.print(headers)
    console.print(f"[bold]value[/bold] ({d['value_encoding']}):")
    if d["value_encoding"] == "json":
        console.print(Syntax(json.dumps(d["value"], indent=2, ensure_ascii=False), "json"))
    else:
        console.print(d["value"], markup=False, highlight=False)
    if d["replays"]:
        history = Table("replay id", "at", "by", "why", "job", "failed again", title="replays")
        for r in d["replays"]:
            history.add_row(
                r["replay_id"], r["at"][:19], r["requested_by"], r["reason"], r.get("job_id") or "-",
                (r["failed_at"] or "-")[:19],
            )  # fmt: skip
        console.print(history)


@dlq_app.command("replay")
def replay(
    reason: Why,
    ids: Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="these ones, at once")] = None,
    service: Service = None,
    error_class: ErrorClass = None,
    tenant: Tenant = None,
    event_type: EventType = None,
    since: Since = None,
    until: Until = None,
    search: Search = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would be replayed, grouped")] = False,
    rate: Annotated[float | None, typer.Option("--rate", min=0.01, help="per second (by filter)")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the job with a progress bar")] = True,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Send dead letters back to the service that failed them: IDs at once, or a filter as a resumable job."""
    api = Api(url, api_key)
    selection = _filters(
        service=service, error_class=error_class, tenant=tenant, event_type=event_type,
        since=since, until=until, search=search,
    )  # fmt: skip
    if ids:
        if selection or rate is not None:
            _die("Give either IDs or filters (and --rate only with filters).", code=2)
        _print_replayed(api.call("POST", "/v1/dead-letters/replay", body={"ids": ids, "reason": reason,
                                                                         "dry_run": dry_run}))  # fmt: skip
        return
    body: dict[str, Any] = {"filter": selection, "reason": reason, "dry_run": dry_run}
    if rate is not None:
        body["rate_per_second"] = rate
    answer = api.call("POST", "/v1/dead-letters/replay", body=body)
    if dry_run:
        _print_groups(f"would replay {answer['replayable']:,} of {answer['total']:,}", answer["groups"])
        return
    console.print(
        f"replay job [bold]{answer['id']}[/bold]: {answer['total']:,} dead letters", highlight=False
    )
    if wait:
        _follow(api, answer)
    else:
        console.print(f"follow it: rastro dlq jobs {answer['id']} --watch", highlight=False)


def _print_replayed(answer: dict[str, Any]) -> None:
    verb = "would replay" if answer["dry_run"] else "replayed"
    console.print(f"{verb} {answer['replayed']}", highlight=False)
    for r in answer["replays"]:
        console.print(f"  {r['id']} → {r['topic']}" + (f" ({r['replay_id']})" if r["replay_id"] else ""))
    for s in answer["skipped"]:
        console.print(f"  [yellow]skipped[/yellow] {s['id']}: {s['reason']}", highlight=False)


def _print_groups(title: str, groups: list[dict[str, Any]]) -> None:
    table = Table("service", "reason", "count", title=title)
    for g in groups:
        table.add_row(g["service"], g["reason"], f"{g['count']:,}")
    console.print(table)


def _follow(api: Api, job: dict[str, Any]) -> None:
    """A progress bar until the job ends; Ctrl-C stops watching, not the job."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task(f"replaying ({job['status']})", total=job["total"] or 1)
            while True:
                progress.update(
                    task,
                    completed=job["replayed"] + job["skipped"] if job["total"] else 1,
                    description=f"replaying ({job['status']})",
                )
                if job["status"] in ("completed", "cancelled"):
                    break
                time.sleep(0.5)
                job = api.call("GET", f"/v1/replay-jobs/{job['id']}")
    except KeyboardInterrupt:
        console.print(f"stopped watching; the job goes on: rastro dlq jobs {job['id']} --watch")
        raise typer.Exit(130) from None
    _print_job(job)


def _print_job(job: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    for name in ("id", "status", "requested_by", "reason", "tenant", "rate_per_second", "total", "replayed",
                 "skipped", "failed", "created_at", "started_at", "finished_at", "cancelled_by"):  # fmt: skip
        table.add_row(name, str(job[name]) if job[name] is not None else "-")
    table.add_row("filter", json.dumps(job["filter"], ensure_ascii=False))
    console.print(table)


@dlq_app.command("purge")
def purge(
    reason: Why,
    ids: Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="these ones")] = None,
    service: Service = None,
    error_class: ErrorClass = None,
    tenant: Tenant = None,
    event_type: EventType = None,
    since: Since = None,
    until: Until = None,
    search: Search = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only count what would be purged")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Purge dead letters (payload erased, metadata kept): IDs, or every one a filter selects."""
    api = Api(url, api_key)
    selection = _filters(
        service=service, error_class=error_class, tenant=tenant, event_type=event_type,
        since=since, until=until, search=search,
    )  # fmt: skip
    if ids:
        if selection:
            _die("Give either IDs or filters.", code=2)
        if not dry_run and (yes or typer.confirm(f"Purge {len(ids)} dead letters?")):
            for dead_letter_id in ids:
                api.call("DELETE", f"/v1/dead-letters/{dead_letter_id}", params={"reason": reason})
            console.print(f"purged {len(ids)}")
        return
    if not selection:
        _die("A purge by filter needs at least one filter.", code=2)
    body = {"filter": selection, "reason": reason}
    preview = api.call("POST", "/v1/dead-letters/purge", body={**body, "dry_run": True})
    _print_groups(f"{preview['purged']:,} dead letters match", preview["groups"])
    if dry_run or preview["purged"] == 0:
        return
    if not yes and not typer.confirm(f"Purge these {preview['purged']:,} dead letters?"):
        raise typer.Exit(1)
    done = api.call("POST", "/v1/dead-letters/purge", body={**body, "expected_count": preview["purged"]})
    console.print(f"purged {done['purged']:,}")


@dlq_app.command("export")
def export(
    service: Service = None,
    error_class: ErrorClass = None,
    tenant: Tenant = None,
    event_type: EventType = None,
    since: Since = None,
    until: Until = None,
    search: Search = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file (default: stdout)")] = None,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Every dead letter the filters select, as JSON lines."""
    params = _filters(
        service=service, error_class=error_class, tenant=tenant, event_type=event_type,
        since=since, until=until, search=search,
    )  # fmt: skip
    lines = Api(url, api_key).stream_lines("/v1/dead-letters/export", params)
    count = 0
    with output.open("w", encoding="utf-8") if output else _stdout() as sink:
        for line in lines:
            if line:
                sink.write(line + "\n")
                count += 1
    if output:
        console.print(f"exported {count:,} dead letters to {output}", highlight=False)


def _stdout() -> Any:
    class _Keep:  # stdout is not ours to close
        def __enter__(self) -> Any:
            return sys.stdout

        def __exit__(self, *_: object) -> None:
            sys.stdout.flush()

    return _Keep()


@dlq_app.command("jobs")
def jobs(
    job_id: Annotated[str | None, typer.Argument(metavar="[JOB_ID]", help="one job (default: list)")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="follow the job with a progress bar")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="stop the job after its current chunk")] = False,
    status: Annotated[str | None, typer.Option("--status", help="pending, running, completed …")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 20,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Replay jobs: list them, show one, follow one (--watch), or cancel one."""
    api = Api(url, api_key)
    if job_id is None:
        params = {"limit": limit, **({"status": status} if status else {})}
        page = api.call("GET", "/v1/replay-jobs", params=params)
        table = Table("id", "created", "status", "by", "reason", "total", "replayed", "skipped", "failed")
        for j in page["items"]:
            table.add_row(
                j["id"], j["created_at"][:19], j["status"], j["requested_by"], _short(j["reason"], 40),
                f"{j['total']:,}", f"{j['replayed']:,}", f"{j['skipped']:,}", f"{j['failed']:,}",
            )  # fmt: skip
        console.print(table)
        return
    if cancel:
        _print_job(api.call("POST", f"/v1/replay-jobs/{job_id}/cancel"))
        return
    job = api.call("GET", f"/v1/replay-jobs/{job_id}")
    if watch:
        _follow(api, job)
    else:
        _print_job(job)


@dlq_app.command("audit")
def audit(
    action: Annotated[
        str | None, typer.Option("--action", help="replay, replay_job_created, purge …")
    ] = None,
    job: Annotated[str | None, typer.Option("--job", help="one replay job's entries")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """The audit trail: who replayed or purged what, when, why, with which filter; newest first."""
    params = {"limit": limit, **({"action": action} if action else {}), **({"job_id": job} if job else {})}
    page = Api(url, api_key).call("GET", "/v1/dead-letters/audit", params=params)
    table = Table("at", "who", "action", "why", "filter", "counts", "job")
    for e in page["items"]:
        table.add_row(
            e["at"][:19], e["actor"], e["action"], _short(e["reason"], 30),
            _short(json.dumps(e["filter"]) if e["filter"] else "-", 50),
            " ".join(f"{k}={v}" for k, v in e["counts"].items()), e["job_id"] or "-",
        )  # fmt: skip
    console.print(table)
