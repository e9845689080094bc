"""``rastro privacy …``: data-subject requests and key rotation across every service that holds personal
data (docs/privacy.md). Each command fans out over HTTP to the services' ``/v1/privacy/<area>/…`` routes
(through the gateway of ``make run`` by default) and prints one JSON document: the answer of each.

    rastro privacy export --email ana@example.com --tenant acme > ana.json
    rastro privacy erase --document 123.456.789-09 --tenant acme
    rastro privacy rotate-keys [--tenant acme] [--resume]
    rastro privacy rotate-master-key [--batch 500]      # after RASTRO_MASTER_KEY changed
    rastro privacy shred-tenant --tenant acme --yes     # irreversible
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

import httpx
import typer

from rastro_cli.local_env import admin_api_key, problem_message

__all__ = ["AREAS", "fan_out", "privacy_app"]

privacy_app = typer.Typer(
    help="Personal data: export, erase, rotate keys, shred a tenant (LGPD).", no_args_is_help=True
)
AREAS = ("notification", "dead-letters")  # the services' privacy prefixes (/v1/privacy/<area>)

BaseUrl = Annotated[str, typer.Option("--base-url", envvar="RASTRO_BASE_URL", help="the gateway")]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="RASTRO_ADMIN_API_KEY", help="privacy:manage or operator key"),
]
Tenant = Annotated[str | None, typer.Option("--tenant", help="the tenant (operator keys)")]
Email = Annotated[str | None, typer.Option("--email")]
Phone = Annotated[str | None, typer.Option("--phone")]
Document = Annotated[str | None, typer.Option("--document", help="CPF or CNPJ")]
DEFAULT_URL = "http://127.0.0.1:8000"


def fan_out(client: httpx.Client, action: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to ``/v1/privacy/<area>/<action>`` of every area; ``{area: answer}``. Raises
    ``RuntimeError`` naming the area that failed (the others' answers are lost: re-run, it is idempotent)."""
    answers = {}
    for area in AREAS:
        response = client.post(f"/v1/privacy/{area}/{action}", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{area}: {response.status_code} {problem_message(response)}")
        answers[area] = response.json()
    return answers


def _run(base_url: str, api_key: str | None, action: str, body: dict[str, Any]) -> None:
    typer.echo(json.dumps(_call(base_url, api_key, action, body), indent=2, ensure_ascii=False))


def _call(base_url: str, api_key: str | None, action: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {admin_api_key(api_key)}"}
    try:
        with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=120, trust_env=False) as c:
            answers = fan_out(c, action, {k: v for k, v in body.items() if v is not None})
    except (httpx.TransportError, RuntimeError) as exc:
        typer.echo(f"{action} failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    return answers


def _subject(
    email: str | None, phone: str | None, document: str | None, tenant: str | None
) -> dict[str, Any]:
    if not (email or phone or document):
        typer.echo("Name the person: --email, --phone and/or --document.", err=True)
        raise typer.Exit(2)
    request_id = f"dsr_{secrets.token_hex(8)}"  # one audit reference across the services
    return {"email": email, "phone": phone, "document": document, "tenant": tenant, "request_id": request_id}


@privacy_app.command("export")
def export(
    email: Email = None,
    phone: Phone = None,
    document: Document = None,
    tenant: Tenant = None,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Everything held about one person, from every service, as JSON (decrypted: handle with care)."""
    _run(base_url, api_key, "export", _subject(email, phone, document, tenant))


@privacy_app.command("erase")
def erase(
    email: Email = None,
    phone: Phone = None,
    document: Document = None,
    tenant: Tenant = None,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Erase one person from every service; prints what each removed."""
    _run(base_url, api_key, "erase", _subject(email, phone, document, tenant))


@privacy_app.command("rotate-keys")
def rotate_keys(
    tenant: Tenant = None,
    resume: Annotated[bool, typer.Option("--resume", help="finish an interrupted run, no new key")] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=10_000)] = 500,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """New data keys for one tenant (or all) and every sealed value re-encrypted, in batches."""
    _run(base_url, api_key, "rotate-keys", {"tenant": tenant, "new_key": not resume, "batch": batch})


@privacy_app.command("rotate-master-key")
def rotate_master_key(
    tenant: Tenant = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=10_000)] = 500,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Re-wrap every key onto the current master key (run once every service has the new
    RASTRO_MASTER_KEY and the old one in RASTRO_MASTER_KEY_PREVIOUS); prints each service's counts."""
    answers = _call(base_url, api_key, "rewrap-keys", {"tenant": tenant, "batch": batch})
    for area, answer in answers.items():
        typer.echo(
            f"{area}: {answer['rewrapped']} re-wrapped, {answer['remaining']} remaining,"
            f" {answer['unreadable']} unreadable (master key {answer['kek_id']})"
        )
    if all(a["remaining"] == 0 for a in answers.values()):
        typer.echo(
            "Every service reports 0 remaining: the old key can be removed from RASTRO_MASTER_KEY_PREVIOUS"
            " (then restart the services)."
        )
    else:
        typer.echo(
            "Keys remain on an old master key: keep it in RASTRO_MASTER_KEY_PREVIOUS and run this again;"
            " unreadable keys need the master key that wrapped them (docs/privacy.md).",
            err=True,
        )
        raise typer.Exit(1)


@privacy_app.command("shred-tenant")
def shred_tenant(
    tenant: Annotated[str, typer.Option("--tenant", help="the tenant to crypto-shred")],
    yes: Annotated[bool, typer.Option("--yes", help="confirm: this cannot be undone")] = False,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Destroy every key of a tenant in every service: its personal data becomes unreadable for good."""
    if not yes:
        typer.echo(
            f"Shredding {tenant!r} makes its personal data unreadable forever: re-run with --yes.", err=True
        )
        raise typer.Exit(2)
    _run(base_url, api_key, "shred-tenant", {"tenant": tenant, "confirm": tenant})
