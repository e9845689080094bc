"""The operators' web console: server-rendered pages (Jinja2) made live with htmx, mounted by the dev
gateway at ``/console`` (docs/console.md).

``build_console(upstreams)`` is the composition root. The console calls the services' own APIs with
the signed-in user's key, through the same upstream URLs the gateway proxies to, using the host app's
shared ``httpx.AsyncClient`` (lifespan state ``client``); run on its own, its own lifespan makes one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jinja2
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rastro_cli.console.health_signals import CounterHistory
from rastro_cli.console.sessions import CookieSigner, SessionStore
from rastro_cli.console.settings import ConsoleSettings
from rastro_cli.console.views import auth, dead_letters, health, kpis, replay_jobs, shipments, subscriptions
from rastro_cli.console.visit import ConsoleState, Visit, signed_in

__all__ = ["SECURITY_HEADERS", "build_console"]

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    # Inline styles only: matplotlib's SVG carries style attributes. No inline script at all.
    "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


async def home(visit: Visit) -> Response:
    return visit.redirect("/shipments")


def build_console(upstreams: Mapping[str, str], settings: ConsoleSettings | None = None) -> Starlette:
    """The console app; ``upstreams`` maps service names (``dlq-replay``) to their base URLs."""
    settings = settings or ConsoleSettings()
    secret = settings.secret.get_secret_value().encode() if settings.secret else os.urandom(32)
    state = ConsoleState(
        settings=settings,
        upstreams={name: url.rstrip("/") for name, url in upstreams.items()},
        signer=CookieSigner(secret),
        sessions=SessionStore(settings.session_hours * 3600, settings.max_sessions),
        history=CounterHistory(settings.health_window_s),
        templates=_templates(),
    )
    app = Starlette(routes=_routes(), lifespan=_own_client)
    app.state.console = state
    app.add_middleware(SecurityHeaders)
    return app


def _routes() -> list[Route | Mount]:
    return [
        Route("/", signed_in(home)),
        Route("/login", auth.sign_in_form),
        Route("/login", auth.sign_in, methods=["POST"]),
        Route("/logout", signed_in(auth.sign_out), methods=["POST"]),
        Route("/tenant", signed_in(auth.choose_tenant), methods=["POST"]),
        Route("/shipments", signed_in(shipments.shipments_page)),
        Route("/shipments/{tracking_number}", signed_in(shipments.shipment_page)),
        Route("/shipments/{tracking_number}/panel", signed_in(shipments.shipment_panel)),
        Route("/health", signed_in(health.health_page)),
        Route("/health/panel", signed_in(health.health_panel)),
        Route("/dead-letters", signed_in(dead_letters.dead_letters_page)),
        Route("/dead-letters/panel", signed_in(dead_letters.dead_letters_panel)),
        Route("/dead-letters/replay", signed_in(replay_jobs.replay_by_filter), methods=["POST"]),
        Route("/dead-letters/jobs/{job_id}", signed_in(replay_jobs.replay_job_panel)),
        Route("/dead-letters/{letter_id}", signed_in(dead_letters.dead_letter_page)),
        Route("/dead-letters/{letter_id}/panel", signed_in(dead_letters.dead_letter_panel)),
        Route("/dead-letters/{letter_id}/replay", signed_in(dead_letters.replay), methods=["POST"]),
        Route("/subscriptions", signed_in(subscriptions.subscriptions_page)),
        Route("/subscriptions/{sub_id}", signed_in(subscriptions.subscription_page)),
        Route("/subscriptions/{sub_id}/attempts", signed_in(subscriptions.attempts_panel)),
        Route("/kpis", signed_in(kpis.kpis_page)),
        Route("/kpis/charts", signed_in(kpis.kpi_charts)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["percent"] = _percent
    env.filters["number"] = _number
    return Jinja2Templates(env=env)


def _when(value: Any) -> str:
    """An ISO timestamp as ``2026-11-23 14:05:11 -03:00`` (its own offset kept)."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    offset = moment.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if offset else ""
    return f"{moment:%Y-%m-%d %H:%M:%S} {offset}".strip()


def _percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}".replace(",", " ")


@contextlib.asynccontextmanager
async def _own_client(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    """Only when the console runs on its own: mounted, the host's lifespan gives the client."""
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
        yield {"client": client}


class SecurityHeaders:
    """No framing, no sniffing, scripts from this origin only, and pages never cached (they hold data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
