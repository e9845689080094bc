"""Who an API key is, as the services see it: an operator key, or one tenant's key, with its role and scopes.

The console does not re-implement authorization: it asks the services. Ingest's ``GET /v1/keys/self``
answers the key's tenant, role and scopes, which the pages use to disable the buttons the key's role
would be refused (UX only: the services still enforce every scope). An older ingest without that route
(404) or one that is down falls back to probing: ``GET /v1/mappings`` answers a tenant key with its
tenant, and an operator key with 422 ``tenant-required``; ingest's ``GET /v1/tenants`` lists every
tenant to an operator and tells a key nobody knows (401) from a key that is valid but not yet known to
normalization (keys reach the other services through a topic). Scopes learnt by probing are unknown
(None), and then every button shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rastro_cli.console.upstream import Answer, ServiceApi
from rastro_kit.roles import grants

__all__ = ["Identity", "SignInError", "identify"]


@dataclass(frozen=True)
class Identity:
    operator: bool
    tenant: str | None
    """A tenant key's tenant, when a service told us (a key without ``shipments:read`` does not)."""
    tenants: tuple[str, ...] = ()
    """Every tenant, for an operator to choose from."""
    key_hint: str = ""
    role: str | None = None
    scopes: frozenset[str] | None = None
    """What the key may do, from ``GET /v1/keys/self``; None when unknown (an older ingest)."""
    acts_for: tuple[str, ...] = ()
    """Further tenants a 3PL key may act for."""

    @property
    def label(self) -> str:
        if self.operator:
            return f"operator key …{self.key_hint}"
        return f"{self.tenant or 'tenant'} key …{self.key_hint}"

    @property
    def grant_label(self) -> str:
        """``role sre``, ``custom scopes``, ``every tenant, every scope``; empty when unknown."""
        if self.operator:
            return "every tenant, every scope"
        if self.role:
            return f"role {self.role}"
        return "custom scopes" if self.scopes is not None else ""

    @property
    def switchable(self) -> tuple[str, ...]:
        """The tenants the header offers to switch to: every tenant to an operator key; a 3PL key's own
        and those it acts for; none to a plain tenant key."""
        if self.operator:
            return self.tenants
        if self.acts_for and self.tenant:
            return (self.tenant, *(t for t in self.acts_for if t != self.tenant))
        return ()

    def can(self, scope: str) -> bool:
        """Whether to offer an action needing ``scope``; unknown scopes offer everything."""
        return self.operator or self.scopes is None or grants(self.scopes, scope)


class SignInError(Exception):
    """The key cannot sign in; the message says why, in words for the person at the form."""


async def identify(api: ServiceApi, key: str) -> Identity:
    hint = key[-4:] if len(key) >= 12 else ""
    me = await api.call("GET", "ingest", "/v1/keys/self", key)
    if me.status == 401:
        raise SignInError("This API key is not valid (unknown, revoked or expired).")
    if me.ok and isinstance(me.body, dict):
        return await _from_self(api, key, me.body, hint)
    return await _probe(api, key, hint)


async def _from_self(api: ServiceApi, key: str, me: dict[str, Any], hint: str) -> Identity:
    scopes = frozenset(str(s) for s in me.get("scopes") or ())
    role = str(me["role"]) if me.get("role") else None
    if me.get("operator"):
        return Identity(True, None, await _all_tenants(api, key), hint, role, scopes)
    # Keys reach the other services through a topic: a key this new may not work there yet.
    if (await api.call("GET", "normalization", "/v1/mappings", key)).status == 401:
        raise SignInError("This key is new and not yet known to every service: try again in a few seconds.")
    acts_for = tuple(str(t) for t in me.get("tenants") or ())
    return Identity(False, str(me.get("tenant_id") or "") or None, (), hint, role, scopes, acts_for)


async def _all_tenants(api: ServiceApi, key: str) -> tuple[str, ...]:
    tenants: Answer = await api.call("GET", "ingest", "/v1/tenants", key)
    return tuple(str(t["id"]) for t in tenants.items())


async def _probe(api: ServiceApi, key: str, hint: str) -> Identity:
    """An ingest without ``/v1/keys/self``: who the key is from what the services answer it."""
    mappings = await api.call("GET", "normalization", "/v1/mappings", key)
    if mappings.status == 200 and isinstance(mappings.body, dict):
        return Identity(operator=False, tenant=str(mappings.body.get("tenant") or "") or None, key_hint=hint)
    if mappings.status == 422 and mappings.problem_type == "tenant-required":
        return Identity(operator=True, tenant=None, tenants=await _all_tenants(api, key), key_hint=hint)
    if mappings.status == 403:
        return Identity(operator=False, tenant=None, key_hint=hint)
    if mappings.status == 401:
        owner = await api.call("GET", "ingest", "/v1/tenants", key)
        if owner.status in (200, 403):
            raise SignInError(
                "This key is new and not yet known to every service: try again in a few seconds."
            )
        if owner.status == 401:
            raise SignInError("This API key is not valid (unknown, revoked or expired).")
        raise SignInError(f"Cannot check the key: {owner.detail or 'ingest did not answer'}.")
    raise SignInError(f"Cannot check the key: {mappings.detail or 'normalization did not answer'}.")
