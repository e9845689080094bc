"""Tenant mappings (de-para): storage, a version-checked per-process cache, and the HTTP API."""

from __future__ import annotations

from rastro_normalization.mappings.cache import MappingCache, tenant_mappings, tenants_mappings

__all__ = ["MappingCache", "tenant_mappings", "tenants_mappings"]
