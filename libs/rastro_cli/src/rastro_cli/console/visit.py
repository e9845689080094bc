"""One request of a signed-in user, and the guard every console page goes through.

``@signed_in`` turns ``async def page(visit: Visit) -> Response`` into a Starlette endpoint: no valid
session cookie → the sign-in page (for an htmx poll, an ``HX-Redirect`` so the whole page goes there);
a POST without the session's CSRF token, or from another origin → 403.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from rastro_cli.console.health_signals import CounterHistory
from rastro_cli.console.sessions import SESSION_COOKIE, CookieSigner, Session, SessionStore
from rastro_cli.console.settings import ConsoleSettings
from rastro_cli.console.upstream import ServiceApi

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "ConsoleState",
    "Visit",
    "base_path",
    "console_state",
    "new_nonce",
    "same_origin",
    "signed_in",
    "to_sign_in",
]

CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass
class ConsoleState:
    settings: ConsoleSettings
    upstreams: Mapping[str, str]
    signer: CookieSigner
    sessions: SessionStore
    history: CounterHistory
    templates: Jinja2Templates

    def api(self, request: Request) -> ServiceApi:
        client: httpx.AsyncClient | None = getattr(request.state, "client", None)
        if client is None:
            raise RuntimeError(
                "the console needs an httpx.AsyncClient in its host app's lifespan state 'client'"
            )
        return ServiceApi(client, self.upstreams, self.settings.upstream_timeout_s)

    def session_of(self, request: Request) -> Session | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        now = time.time()
        session_id = self.signer.unsign(cookie, now, self.sessions.ttl_s)
        return self.sessions.get(session_id, now) if session_id else None


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state


def base_path(request: Request) -> str:
    """Where the console is mounted (``/console``), so links work under any prefix."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def same_origin(request: Request) -> bool:
    """A browser names the page a POST comes from; it must be this host (no Origin: not a browser)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


class Visit:
    def __init__(self, request: Request, state: ConsoleState, session: Session) -> None:
        self.request, self.state, self.session = request, state, session
        self.api = state.api(request)
        self.base = base_path(request)

    @property
    def key(self) -> str:
        return self.session.key

    @property
    def csrf(self) -> str:
        return self.state.signer.token("csrf", self.session.id)

    def tenant_params(self) -> dict[str, str]:
        """``?tenant=`` for an operator key (its chosen tenant) and for a 3PL key acting for another
        tenant than its own; a tenant key on its own tenant never names one."""
        identity, tenant = self.session.identity, self.session.tenant
        if tenant and (identity.operator or tenant != identity.tenant):
            return {"tenant": tenant}
        return {}

    @property
    def needs_tenant(self) -> bool:
        """An operator who has not chosen a tenant: pages that read one tenant's data cannot."""
        return self.session.identity.operator and not self.session.tenant

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        context |= {"visit": self, "identity": self.session.identity, "base": self.base, "csrf": self.csrf}
        context.setdefault("poll", self.state.settings.poll_seconds)
        response: HTMLResponse = self.state.templates.TemplateResponse(
            self.request, template, context, status_code=status
        )
        return response

    def redirect(self, path: str) -> RedirectResponse:
        return RedirectResponse(self.base + path, status_code=303)


Page = Callable[[Visit], Awaitable[Response]]


def signed_in(page: Page) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = console_state(request)
        session = state.session_of(request)
        if session is None:
            return to_sign_in(request)
        if request.method == "POST":
            form = await request.form()
            token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
            if not same_origin(request) or not state.signer.check("csrf", session.id, str(token or "")):
                return HTMLResponse("Forbidden: the form is stale or not from this console. Reload.", 403)
        return await page(Visit(request, state, session))

    endpoint.__name__ = page.__name__
    endpoint.__doc__ = page.__doc__
    return endpoint


def to_sign_in(request: Request) -> Response:
    target = base_path(request) + "/login"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def new_nonce() -> str:
    return secrets.token_urlsafe(16)
