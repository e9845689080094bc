"""What ``rastro dev up`` prints once everything answers: where to look and what to try."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rastro_cli.devstack.catalog import SERVICES, service_url

__all__ = ["ReadyInfo", "print_ready"]


@dataclass(frozen=True)
class ReadyInfo:
    base_url: str
    admin_key: str
    demo_key: str | None
    bootstrap: str
    database_url: str
    broker_note: str
    database_note: str
    logs: Path
    demo_env: Path
    tracking_number: str | None


def print_ready(console: Console, info: ReadyInfo) -> None:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("Base URL", info.base_url)
    facts.add_row("Console", f"{info.base_url}/console/  [dim](sign in with an API key below)[/]")
    missing = Text("not created (see the warning above)", style="yellow")
    facts.add_row("Demo API key", info.demo_key or missing)
    facts.add_row("Admin API key", info.admin_key)
    facts.add_row("Kafka", f"{info.bootstrap}  [dim]{info.broker_note}[/]")
    facts.add_row("Postgres", f"{_without_password(info.database_url)}  [dim]{info.database_note}[/]")
    facts.add_row("Env file", f"{info.demo_env}  [dim](set -a; . {info.demo_env}; set +a)[/]")
    facts.add_row("Logs", f"{info.logs}/<name>.log")
    docs = Table.grid(padding=(0, 2))
    docs.add_column(style="bold")
    docs.add_column()
    for spec in SERVICES:
        docs.add_row(spec.name, f"{service_url(spec)}/docs")
    console.print(
        Panel(
            Group(facts, Text(""), Text("API docs", style="bold underline"), docs),
            title="[bold green]Rastro is running[/]",
            subtitle="Ctrl-C stops everything",
            expand=False,
        )
    )
    console.print("[bold]Try it[/] (from another shell in this directory):")
    for line in _examples(info):
        # soft_wrap: long commands stay on one line, so they can be copied as they are.
        console.print(Text(line, style="dim" if line.lstrip().startswith("#") else "cyan"), soft_wrap=True)


def _examples(info: ReadyInfo) -> list[str]:
    tracking = info.tracking_number or "AA123456785BR"
    auth = '-H "Authorization: Bearer $RASTRO_DEMO_API_KEY"'
    json_body = "-H 'Content-Type: application/json'"
    event = (
        '{"type": "tracking.event", "carrier": "correios", "tracking_number": "AA123456785BR", '
        '"status_code": "PO-01", "description": "Objeto postado", '
        '"occurred_at": "2026-11-23T14:05:11-03:00", '
        '"location": {"city": "São Paulo", "state": "SP", "country": "BR"}}'
    )
    webhook = '{"url": "http://127.0.0.1:9999/hook", "event_types": ["*"], "description": "local receiver"}'
    return [
        f"  set -a; . {info.demo_env}; set +a",
        "  # post an event",
        f"  curl -sS -X POST \"$RASTRO_BASE_URL/v1/events\" {auth} {json_body} -d '{event}'",
        "  # get a shipment (one of the demo's)",
        f'  curl -sS "$RASTRO_BASE_URL/v1/shipments/{tracking}" {auth}',
        "  # subscribe a webhook",
        f"  curl -sS -X POST \"$RASTRO_BASE_URL/v1/subscriptions\" {auth} {json_body} -d '{webhook}'",
        "  # list the demo tenant's dead letters ($RASTRO_ADMIN_API_KEY sees every tenant's)",
        f'  curl -sS "$RASTRO_BASE_URL/v1/dead-letters" {auth}',
    ]


def _without_password(url: str) -> str:
    """A DATABASE_URL given by the user may carry a password: the panel is no place for it."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
