"""``rastro privacy …``: data-subject requests and key rotation across every service that holds personal
data (docs/privacy.md). Each command fans out over HTTP to the services' ``/v1/privacy/<area>/…`` routes
(through the gateway of ``make run`` by default) and prints one JSON document: the answer of each.

    rastro privacy export --email ana@example.com --tenant acme > ana.json
    rastro privacy erase --document 123.456.789-09 --tenant acme
    rastro privacy rotate-keys [--tenant acme] [--resume]
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any

import httpx
import typer

from rastro_cli.local_env import demo_env, problem_message

__all__ = ["AREAS", "fan_out", "privacy_app"]

privacy_app = typer.Typer(help="Personal data: export, erase, rotate keys (LGPD).", no_args_is_help=True)
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
    key = api_key or demo_env().get("RASTRO_ADMIN_API_KEY")
    if not key:
        typer.echo("No API key: pass --api-key or set RASTRO_ADMIN_API_KEY.", err=True)
        raise typer.Exit(2)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=120, trust_env=False) as c:
            answers = fan_out(c, action, {k: v for k, v in body.items() if v is not None})
    except (httpx.TransportError, RuntimeError) as exc:
        typer.echo(f"{action} failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(answers, indent=2, ensure_ascii=False))


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
