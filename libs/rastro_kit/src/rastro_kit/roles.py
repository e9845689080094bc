"""Scopes and the named roles built on them (docs/roles.md).

A scope names one thing a key may do; a role is a named, versioned set of scopes, so that "an SRE key"
means the same on every service. A key carries a role, or explicit scopes, never both; when a key has a
role its effective scopes are the role's *current* table here (so tightening a role applies to every key
of that role at once), and the scopes stored beside it are only a snapshot for readers that predate roles.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

__all__ = [
    "ADMIN",
    "IMPLIED_BY",
    "ROLES",
    "ROLE_NAMES",
    "SCOPES",
    "Role",
    "Scope",
    "effective_scopes",
    "grants",
    "role_scopes",
]

ADMIN = "admin"
# The type (request models and their OpenAPI enums use it) and the tuple are one list.
Scope = Literal[
    "events:write",
    "telemetry:write",
    "shipments:read",
    "mappings:manage",
    "subscriptions:read",
    "subscriptions:manage",
    "dead-letters:read",
    "dead-letters:manage",
    "carriers:manage",
    "audit:read",
    "privacy:manage",
    "retention:manage",
    "admin",
]
SCOPES: tuple[str, ...] = get_args(Scope)
Role = Literal["admin", "operator", "sre", "viewer", "integration", "fleet"]  # the keys of ROLES

# A managing scope includes reading the same thing: keys created before the read scopes existed keep
# every route they had.
# ``events:write`` includes ``telemetry:write``: a key that may feed shipment events may feed GPS too.
IMPLIED_BY: dict[str, frozenset[str]] = {
    "subscriptions:read": frozenset({"subscriptions:manage"}),
    "dead-letters:read": frozenset({"dead-letters:manage"}),
    "telemetry:write": frozenset({"events:write"}),
}

_READS = frozenset({"shipments:read", "subscriptions:read"})
ROLES: dict[str, frozenset[str]] = {
    "viewer": _READS,
    "integration": frozenset({"events:write", "shipments:read"}),
    "fleet": frozenset({"telemetry:write", "shipments:read"}),  # a telematics platform: positions, routes
    "sre": _READS | {"dead-letters:manage"},
    "operator": _READS
    | {"events:write", "mappings:manage", "subscriptions:manage", "dead-letters:manage", "carriers:manage"},
    ADMIN: frozenset(SCOPES),
}
ROLE_NAMES = tuple(ROLES)


def role_scopes(role: str) -> frozenset[str]:
    """The scopes of a role; an unknown role (e.g. one removed since the key was made) grants nothing."""
    return ROLES.get(role, frozenset())


def effective_scopes(role: str | None, scopes: Iterable[str]) -> frozenset[str]:
    """What a key may do: its role's scopes when it has a role, else its explicit scopes."""
    return role_scopes(role) if role else frozenset(scopes)


def grants(scopes: frozenset[str], scope: str) -> bool:
    """Whether a set of scopes allows ``scope`` (``admin`` allows everything of its tenant)."""
    return ADMIN in scopes or scope in scopes or bool(IMPLIED_BY.get(scope, frozenset()) & scopes)
