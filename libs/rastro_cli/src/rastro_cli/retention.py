"""``rastro retention show|set``: a tenant's retention in every service (docs/privacy.md "Retention per
tenant"). Each service serves the categories it applies at ``/v1/retention/<area>``; these commands ask
each (through the gateway of ``make run`` by default).

    rastro retention show --tenant acme
    rastro retention set --tenant acme --shipments 180 --dead-letters 14
    rastro retention set --tenant acme --shipments default      # drop the override
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from rastro_cli.local_env import admin_api_key, problem_message
from rastro_cli.tenants import DEFAULT_URL, ApiKey, BaseUrl
from rastro_kit.retention import MAX_DAYS, MIN_DAYS

__all__ = ["AREAS", "CATEGORY_AREAS", "diverging", "parse_days", "retention_app", "updates_by_area"]

AREAS = {  # /v1/retention/<area> -> the service
    "ingest": "ingest",
    "normalization": "normalization",
    "eta": "eta",
    "notification": "notification",
    "dead-letters": "dlq-replay",
}
CATEGORY_AREAS: dict[str, tuple[str, ...]] = {  # which services apply each category
    "shipments": ("ingest", "normalization", "eta"),
    "delivery_log": ("notification",),
    "recipients": ("notification",),
    "dead_letters": ("dead-letters",),
    "idempotency_keys": ("ingest",),
    "imports": ("ingest",),
}
retention_app = typer.Typer(help="Per-tenant data retention (LGPD).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
Tenant = Annotated[str, typer.Option("--tenant", help="the tenant")]
Days = Annotated[str | None, typer.Option(help="days (1..3650), or 'default' to drop the override")]


def parse_days(value: str) -> int | None:
    """``"180"`` -> 180; ``"default"`` -> None (the override is dropped)."""
    if value.strip().lower() == "default":
        return None
    try:
        days = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: a number of days or 'default'") from None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise typer.BadParameter(f"{days}: between {MIN_DAYS} and {MAX_DAYS} days")
    return days


def updates_by_area(days: Mapping[str, int | None]) -> dict[str, dict[str, int | None]]:
    """``{category: days}`` -> ``{area: {category: days}}`` for every service that applies each."""
    out: dict[str, dict[str, int | None]] = {}
    for category, value in days.items():
        for area in CATEGORY_AREAS[category]:
            out.setdefault(area, {})[category] = value
    return out


@contextlib.contextmanager
def _client(base_url: str, api_key: str | None) -> Iterator[httpx.Client]:
    """A client on the gateway; an unreachable stack ends the command with one line."""
    headers = {"Authorization": f"Bearer {admin_api_key(api_key)}"}
    try:
        with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=30, trust_env=False) as c:
            yield c
    except httpx.TransportError as exc:
        err.print(f"[red]Cannot reach {base_url}: {exc}. Is the stack running (make run)?")
        raise typer.Exit(1) from exc


def _check(area: str, response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        err.print(f"[red]{AREAS[area]}: {response.status_code} {problem_message(response)}")
        raise typer.Exit(1)
    return dict(response.json())


def diverging(answers: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Categories whose days differ between the services that apply them: ``{category: {service: days}}``.

    ``shipments`` is applied by ingest, normalization and eta, each in its own database; set apart (the
    per-service API allows it), one service keeps a shipment the others have purged."""
    days: dict[str, dict[str, float]] = {}
    for answer in answers:
        for p in answer["policies"]:
            days.setdefault(p["category"], {})[answer["service"]] = p["days"]
    return {category: found for category, found in days.items() if len(set(found.values())) > 1}


def _print(answers: list[dict[str, Any]]) -> None:
    table = Table("category", "service", "days", "source", "default", "changed by")
    rows = [(p, a["service"]) for a in answers for p in a["policies"]]
    for p, service in sorted(rows, key=lambda r: (list(CATEGORY_AREAS).index(r[0]["category"]), r[1])):
        source = "[bold]override[/bold]" if p["source"] == "override" else "default"
        table.add_row(
            p["category"], service, f"{p['days']:g}", source, f"{p['default_days']:g}", p["updated_by"] or ""
        )
    console.print(table)
    for category, by_service in diverging(answers).items():
        listed = ", ".join(f"{service} {days:g}" for service, days in sorted(by_service.items()))
        err.print(
            f"[yellow]{category} differs between services ({listed}); make them equal with"
            f" rastro retention set --{category.replace('_', '-')} DAYS"
        )


@retention_app.command("show")
def show(tenant: Tenant, base_url: BaseUrl = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """The tenant's retention, per category and service: days, default or override."""
    with _client(base_url, api_key) as client:
        answers = [_check(a, client.get(f"/v1/retention/{a}", params={"tenant": tenant})) for a in AREAS]
    _print(answers)


@retention_app.command("set")
def set_retention(
    tenant: Tenant,
    shipments: Days = None,
    delivery_log: Days = None,
    recipients: Days = None,
    dead_letters: Days = None,
    idempotency_keys: Days = None,
    imports: Days = None,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Set days per category in every service that applies it (admin or operator key); then show."""
    given = {
        "shipments": shipments,
        "delivery_log": delivery_log,
        "recipients": recipients,
        "dead_letters": dead_letters,
        "idempotency_keys": idempotency_keys,
        "imports": imports,
    }
    days = {category: parse_days(v) for category, v in given.items() if v is not None}
    if not days:
        err.print("Name at least one category: --shipments, --delivery-log, --dead-letters …")
        raise typer.Exit(2)
    with _client(base_url, api_key) as client:
        answers = [
            _check(area, client.put(f"/v1/retention/{area}", json={"tenant": tenant, "days": body}))
            for area, body in updates_by_area(days).items()
        ]
    _print(answers)
