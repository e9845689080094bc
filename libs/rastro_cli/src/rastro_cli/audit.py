"""``rastro audit list``: the audit logs of every service, merged newest first (docs/audit.md).

Each service serves its own log at ``GET /v1/audit/<service>``; this command asks each (through the
gateway by default), merges the pages by time, and prints a table or JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from rastro_cli.local_env import admin_api_key, problem_message
from rastro_cli.tenants import DEFAULT_URL, ApiKey, BaseUrl

__all__ = ["AUDITED_SERVICES", "audit_app", "fetch_merged", "merge_newest_first"]

AUDITED_SERVICES = ("ingest", "normalization", "eta", "notification", "dlq-replay")
audit_app = typer.Typer(help="The audit log: who changed what, when, from where.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def merge_newest_first(pages: Iterable[list[dict[str, Any]]], limit: int) -> list[dict[str, Any]]:
    """One list of every service's entries, newest first (ties: by service, then id)."""
    items = [item for page in pages for item in page]
    items.sort(key=lambda i: (i["at"], i.get("service", ""), i["id"]), reverse=True)
    return items[:limit]


def fetch_merged(
    client: httpx.Client, services: Iterable[str], params: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    pages = []
    for service in services:
        response = client.get(f"/v1/audit/{service}", params={**params, "limit": limit})
        if response.status_code >= 400:
            err.print(f"[red]{service}: {problem_message(response)}")
            raise typer.Exit(1)
        pages.append(response.json()["items"])
    return merge_newest_first(pages, limit)


@audit_app.command("list")
def list_audit(
    action: Annotated[str | None, typer.Option("--action", help="exact, or a prefix: key.*")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601 with offset")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="an API key id")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="operator and 3PL keys")] = None,
    service: Annotated[
        list[str] | None, typer.Option("--service", help="repeat; default: every service")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List audit entries of every service, newest first (needs an admin or audit:read key)."""
    params = {
        k: v for k, v in {"action": action, "since": since, "actor": actor, "tenant": tenant}.items() if v
    }
    headers = {"Authorization": f"Bearer {admin_api_key(api_key)}"}
    try:
        with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=30) as client:
            items = fetch_merged(client, service or AUDITED_SERVICES, params, limit)
    except httpx.TransportError as exc:
        err.print(f"[red]Cannot reach {base_url}: {exc}. Is the stack running (make run)?")
        raise typer.Exit(1) from exc
    if as_json:
        for item in items:
            console.print(json.dumps(item, ensure_ascii=False), soft_wrap=True, highlight=False)
        return
    table = Table("at", "service", "tenant", "actor", "role", "action", "target", "from")
    for i in items:
        origin = i["origin"]
        table.add_row(
            i["at"][:19],
            i["service"],
            i["tenant_id"] or "",
            i["actor"]["key_id"],
            i["actor"]["role"] or "",
            i["action"],
            i["target"] or "",
            origin.get("client_ip") or "",
        )
    console.print(table)
