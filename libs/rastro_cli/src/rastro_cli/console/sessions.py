"""Sign-in sessions: an opaque, signed id in the cookie; the API key stays in this process.

The cookie is ``<session id>.<issued at>.<HMAC-SHA256>``, HttpOnly and SameSite=Strict. The key the
user typed is kept server-side beside the session id, so it never goes back to the browser, is never
logged, and signing out really ends the session. Sessions live in memory: a restart of the gateway
signs everyone out. CSRF tokens are HMACs of the session id, so they need no storage either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from rastro_cli.console.identity import Identity

__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "CookieSigner", "Session", "SessionStore"]

SESSION_COOKIE = "rastro_console"
LOGIN_COOKIE = "rastro_console_login"
"""A signed nonce given with the sign-in form: the form's CSRF token is bound to it."""
CLOCK_SKEW_S = 60.0


class CookieSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the console secret must be at least 16 bytes")
        self._secret = secret

    def sign(self, value: str, now: float) -> str:
        if "." in value:
            raise ValueError("a signed value must not contain '.'")
        body = f"{value}.{int(now)}"
        return f"{body}.{self._mac('cookie', body)}"

    def unsign(self, token: str, now: float, max_age: float) -> str | None:
        """The value if the signature is ours and the token is younger than ``max_age``; else None."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        value, issued, mac = parts
        if not hmac.compare_digest(mac, self._mac("cookie", f"{value}.{issued}")):
            return None
        age = now - int(issued)
        return value if -CLOCK_SKEW_S <= age <= max_age else None

    def token(self, purpose: str, value: str) -> str:
        return self._mac(purpose, value)

    def check(self, purpose: str, value: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self._mac(purpose, value))

    def _mac(self, purpose: str, body: str) -> str:
        digest = hmac.new(self._secret, f"{purpose}:{body}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass
class Session:
    id: str = field(repr=False)
    identity: Identity
    key: str = field(repr=False)
    created_at: float
    tenant: str | None
    """The tenant the pages act on: a tenant key's own; for an operator the one chosen (None: all)."""


class SessionStore:
    def __init__(self, ttl_s: float, max_sessions: int) -> None:
        self.ttl_s, self._max = ttl_s, max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, identity: Identity, key: str, now: float) -> Session:
        tenant = identity.tenant if not identity.operator else _default_tenant(identity.tenants)
        session = Session(secrets.token_urlsafe(32), identity, key, now, tenant)
        self._sessions[session.id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str, now: float) -> Session | None:
        session = self._sessions.get(session_id)
        if session is not None and now - session.created_at > self.ttl_s:
            self.drop(session_id)
            return None
        return session

    def drop(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)


def _default_tenant(tenants: tuple[str, ...]) -> str | None:
    """An operator starts on the demo tenant when there is one: the shipment pages need a tenant."""
    if "demo" in tenants:
        return "demo"
    return tenants[0] if tenants else None
