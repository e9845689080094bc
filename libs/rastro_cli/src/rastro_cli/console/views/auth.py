"""Sign in with an API key, sign out, and (operator keys) choose the tenant the pages show."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rastro_cli.console.identity import SignInError, identify
from rastro_cli.console.sessions import LOGIN_COOKIE, SESSION_COOKIE
from rastro_cli.console.visit import CSRF_FIELD, Visit, base_path, console_state, new_nonce, same_origin
from rastro_kit.logs import get_logger

__all__ = ["choose_tenant", "sign_in", "sign_in_form", "sign_out"]

log = get_logger(__name__)
LOGIN_FORM_MAX_AGE_S = 3600.0


def _form(request: Request, nonce: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    state = console_state(request)
    context = {"base": base_path(request), "csrf": state.signer.token("login", nonce), "error": error}
    response: HTMLResponse = state.templates.TemplateResponse(
        request, "login.html", context, status_code=status
    )
    response.set_cookie(
        LOGIN_COOKIE,
        state.signer.sign(nonce, time.time()),
        max_age=int(LOGIN_FORM_MAX_AGE_S),
        path=base_path(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def sign_in_form(request: Request) -> Response:
    state = console_state(request)
    if state.session_of(request) is not None:
        return RedirectResponse(base_path(request) + "/", status_code=303)
    return _form(request, new_nonce())


async def sign_in(request: Request) -> Response:
    state = console_state(request)
    form = await request.form()
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    nonce = state.signer.unsign(cookie, time.time(), LOGIN_FORM_MAX_AGE_S) if cookie else None
    if (
        nonce is None
        or not same_origin(request)
        or not state.signer.check("login", nonce, str(form.get(CSRF_FIELD)))
    ):
        return _form(request, new_nonce(), "The sign-in form expired. Try again.", status=403)
    key = str(form.get("api_key") or "").strip()
    if not key:
        return _form(request, nonce, "Paste an API key.", status=422)
    try:
        identity = await identify(state.api(request), key)
    except SignInError as exc:
        log.info("console_sign_in_refused", reason=str(exc))
        return _form(request, nonce, str(exc), status=401)
    now = time.time()
    session = state.sessions.create(identity, key, now)
    log.info("console_signed_in", who=identity.label, operator=identity.operator)
    response = RedirectResponse(base_path(request) + "/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.signer.sign(session.id, now),
        max_age=int(state.sessions.ttl_s),
        path=base_path(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path=base_path(request) or "/")
    return response


async def sign_out(visit: Visit) -> Response:
    visit.state.sessions.drop(visit.session.id)
    response = visit.redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path=visit.base or "/")
    return response


async def choose_tenant(visit: Visit) -> Response:
    form = await visit.request.form()
    wanted = str(form.get("tenant") or "").strip()
    identity = visit.session.identity
    if wanted in identity.switchable or (identity.operator and not wanted):  # "": an operator's all
        visit.session.tenant = wanted or None
    back = str(form.get("back") or "/")
    return visit.redirect(back if back.startswith("/") and not back.startswith("//") else "/")
