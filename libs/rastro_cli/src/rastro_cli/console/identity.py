"""Who an API key is, as the services see it: an operator key, or one tenant's key.

The console does not re-implement authorization: it asks the services. ``GET /v1/mappings`` answers a
tenant key with its tenant, and an operator key with 422 ``tenant-required``; ingest's ``GET
/v1/tenants`` lists every tenant to an operator and tells a key nobody knows (401) from a key that is
valid but not yet known to normalization (keys reach the other services through a topic).
"""

from __future__ import annotations

from dataclasses import dataclass

from rastro_cli.console.upstream import ServiceApi

__all__ = ["Identity", "SignInError", "identify"]


@dataclass(frozen=True)
class Identity:
    operator: bool
    tenant: str | None
    """A tenant key's tenant, when a service told us (a key without ``shipments:read`` does not)."""
    tenants: tuple[str, ...] = ()
    """Every tenant, for an operator to choose from."""
    key_hint: str = ""

    @property
    def label(self) -> str:
        if self.operator:
            return f"operator key …{self.key_hint}"
        return f"{self.tenant or 'tenant'} key …{self.key_hint}"


class SignInError(Exception):
    """The key cannot sign in; the message says why, in words for the person at the form."""


async def identify(api: ServiceApi, key: str) -> Identity:
    hint = key[-4:] if len(key) >= 12 else ""
    mappings = await api.call("GET", "normalization", "/v1/mappings", key)
    if mappings.status == 200 and isinstance(mappings.body, dict):
        return Identity(operator=False, tenant=str(mappings.body.get("tenant") or "") or None, key_hint=hint)
    if mappings.status == 422 and mappings.problem_type == "tenant-required":
        tenants = await api.call("GET", "ingest", "/v1/tenants", key)
        items = tenants.body.get("items", []) if tenants.ok and isinstance(tenants.body, dict) else []
        return Identity(operator=True, tenant=None, tenants=tuple(str(t["id"]) for t in items), key_hint=hint)
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
