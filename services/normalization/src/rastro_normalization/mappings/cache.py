"""A per-process cache of tenant mappings, checked against the tenant's version on every use.

The handler reads the tenant's version inside its own transaction (one primary-key lookup, or one query
for all the tenants of a batch) and reloads the mappings only when the version moved, so a change
committed before a record's transaction began is always seen: correctness first, and the common case
costs one cheap query per batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from rastro_normalization.domain.mappings import EMPTY_MAPPINGS, TenantMappings
from rastro_normalization.mappings import repository as repo

__all__ = ["MappingCache", "tenant_mappings", "tenants_mappings"]


class MappingCache:
    """Least-recently-used mappings of up to ``max_tenants`` tenants."""

    def __init__(self, max_tenants: int = 1024) -> None:
        self._max = max_tenants
        self._entries: OrderedDict[str, TenantMappings] = OrderedDict()
        self.loads = 0  # how many times mappings were read from Postgres (tests and metrics look)

    async def get(self, conn: Any, tenant_id: str) -> TenantMappings:
        return await self._at(conn, tenant_id, await repo.current_version(conn, tenant_id))

    async def get_many(self, conn: Any, tenant_ids: Iterable[str]) -> dict[str, TenantMappings]:
        """Several tenants' mappings, their versions read in one query."""
        wanted = sorted(set(tenant_ids))
        rows = await conn.fetch(
            "SELECT tenant_id, version FROM mapping_versions WHERE tenant_id = ANY($1::text[])", wanted
        )
        versions = {r["tenant_id"]: int(r["version"]) for r in rows}
        return {t: await self._at(conn, t, versions.get(t, 0)) for t in wanted}

    async def _at(self, conn: Any, tenant_id: str, version: int) -> TenantMappings:
        if version == 0:
            return EMPTY_MAPPINGS
        cached = self._entries.get(tenant_id)
        if cached is not None and cached.version == version:
            self._entries.move_to_end(tenant_id)
            return cached
        loaded = await repo.load_mappings(conn, tenant_id)
        self.loads += 1
        self._entries[tenant_id] = loaded
        self._entries.move_to_end(tenant_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return loaded


_PROCESS_CACHE = MappingCache()


async def tenant_mappings(conn: Any, tenant_id: str) -> TenantMappings:
    """The tenant's current mappings, through this process's cache."""
    return await _PROCESS_CACHE.get(conn, tenant_id)


async def tenants_mappings(conn: Any, tenant_ids: Iterable[str]) -> dict[str, TenantMappings]:
    """The current mappings of each of ``tenant_ids``, through this process's cache."""
    return await _PROCESS_CACHE.get_many(conn, tenant_ids)
