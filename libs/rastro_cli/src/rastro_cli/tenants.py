"""``rastro tenants …`` and ``rastro keys …``: tenants and API keys through ingest's admin API.

The base URL defaults to ``RASTRO_BASE_URL`` (else ``http://127.0.0.1:8000``, the ``make run`` gateway);
the key to ``RASTRO_ADMIN_API_KEY``, else the one ``make run`` wrote to ``.rastro/demo.env``.
A new key is printed once: ingest keeps only its hash.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from rastro_cli.local_env import admin_api_key, problem_message

__all__ = ["keys_app", "tenants_app"]

tenants_app = typer.Typer(help="Tenants (needs the operator key).", no_args_is_help=True)
keys_app = typer.Typer(
    help="A tenant's API keys: create, list, revoke, rotate, whoami.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)

BaseUrl = Annotated[
    str,
    typer.Option("--base-url", envvar="RASTRO_BASE_URL", help="Rastro's base URL (the gateway, or ingest)"),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="RASTRO_ADMIN_API_KEY",
        show_default=False,
        help="operator or tenant admin key (default: RASTRO_ADMIN_API_KEY, else .rastro/demo.env)",
    ),
]
DEFAULT_URL = "http://127.0.0.1:8000"


def _call(method: str, base_url: str, api_key: str | None, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {admin_api_key(api_key)}"}
    try:
        with httpx.Client(base_url=base_url.rstrip("/"), timeout=30) as client:
            response = client.request(method, path, json=body, headers=headers)
    except httpx.TransportError as exc:
        err.print(f"[red]Cannot reach {base_url}: {exc}. Is the stack running (make run)?")
        raise typer.Exit(1) from exc
    if response.status_code >= 400:
        _fail(response)
    return response.json() if response.content else None


def _fail(response: httpx.Response) -> None:
    err.print(f"[red]Error {response.status_code}:[/red] {problem_message(response)}")
    raise typer.Exit(1)


@tenants_app.command("create")
def create_tenant(
    tenant_id: Annotated[str, typer.Argument(metavar="ID", help="lowercase letters, digits, - and _")],
    name: Annotated[str, typer.Option("--name", help="display name")],
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Create a tenant."""
    tenant = _call("POST", base_url, api_key, "/v1/tenants", {"id": tenant_id, "name": name})
    console.print(f"Created tenant [bold]{tenant['id']}[/bold] ({tenant['name']}).")


@tenants_app.command("list")
def list_tenants(base_url: BaseUrl = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """List tenants (an operator key sees all, a tenant key its own)."""
    page = _call("GET", base_url, api_key, "/v1/tenants")
    table = Table("id", "name", "created")
    for t in page["items"]:
        table.add_row(t["id"], t["name"], t["created_at"][:19])
    console.print(table)


@keys_app.command("create")
def create_key(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    name: Annotated[str | None, typer.Option("--name", help="what the key is for")] = None,
    environment: Annotated[str, typer.Option("--environment", help="production or sandbox")] = "production",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="repeat for several (default: events:write and shipments:read)"),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role", help="admin, operator, sre, viewer, integration or fleet (instead of --scope)"
        ),
    ] = None,
    acts_for: Annotated[
        list[str] | None,
        typer.Option("--acts-for", help="a further tenant this 3PL key may act for (repeat; operator key)"),
    ] = None,
    expires_in_days: Annotated[int | None, typer.Option("--expires-in-days")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the key")] = False,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Create an API key with a role or scopes (docs/roles.md); the key is shown once."""
    body: dict[str, Any] = {"name": name, "environment": environment, "expires_in_days": expires_in_days}
    if scope:
        body["scopes"] = scope
    if role:
        body["role"] = role
    if acts_for:
        body["tenants"] = acts_for
    _show_new_key(_call("POST", base_url, api_key, f"/v1/tenants/{tenant}/keys", body), quiet)


@keys_app.command("list")
def list_keys(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """List a tenant's keys (never the keys themselves: their last four characters)."""
    page = _call("GET", base_url, api_key, f"/v1/tenants/{tenant}/keys")
    table = Table("id", "name", "environment", "scopes", "key", "created", "expires", "status")
    for k in page["items"]:
        status = "revoked" if k["revoked_at"] else "active"
        expires = (k["expires_at"] or "never")[:19]
        table.add_row(
            k["id"], k["name"] or "", k["environment"], " ".join(k["scopes"]), f"…{k['hint']}",
            k["created_at"][:19], expires, status,
        )  # fmt: skip
    console.print(table)


@keys_app.command("whoami")
def whoami(base_url: BaseUrl = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """What the key in use may do: its tenant, role, scopes and the tenants it acts for (docs/roles.md)."""
    me = _call("GET", base_url, api_key, "/v1/keys/self")
    table = Table("id", "name", "tenant", "environment", "role", "scopes", "acts for", "expires")
    table.add_row(
        me["id"], me["name"] or "", me["tenant_id"] or "(operator: every tenant)", me["environment"],
        me["role"] or "", " ".join(me["scopes"]), " ".join(me["tenants"]), (me["expires_at"] or "never")[:19],
    )  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def revoke_key(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    key_id: Annotated[str, typer.Argument(help="the key's id (key_…), from `rastro keys list`")],
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Revoke a key at once."""
    _call("DELETE", base_url, api_key, f"/v1/tenants/{tenant}/keys/{key_id}")
    console.print(f"Revoked {key_id}.")


@keys_app.command("rotate")
def rotate_key(
    tenant: Annotated[str, typer.Argument(help="tenant id")],
    key_id: Annotated[str, typer.Argument(help="the key to replace")],
    overlap_hours: Annotated[
        int, typer.Option("--overlap-hours", help="the old key keeps working this long")
    ] = 24,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the new key")] = False,
    base_url: BaseUrl = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Replace a key: a new key now; the old one keeps working for the overlap."""
    path = f"/v1/tenants/{tenant}/keys/{key_id}/rotate"
    _show_new_key(_call("POST", base_url, api_key, path, {"overlap_hours": overlap_hours}), quiet)
    if not quiet:
        console.print(f"{key_id} keeps working for {overlap_hours} h.")


def _show_new_key(key: dict[str, Any], quiet: bool) -> None:
    if quiet:
        console.print(key["key"], soft_wrap=True, highlight=False)
        return
    table = Table("id", "tenant", "environment", "role", "scopes", "expires")
    table.add_row(
        key["id"],
        key["tenant_id"],
        key["environment"],
        key.get("role") or "",
        " ".join(key["scopes"]),
        key["expires_at"] or "never",
    )
    console.print(table)
    console.print("[bold yellow]The key, shown only this once:[/bold yellow]")
    console.print(key["key"], soft_wrap=True, highlight=False)
