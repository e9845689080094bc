"""Event ids that a client chose, scoped to its tenant.

A client may give its events ids of its own (``event_id`` in the API, the upstream topic and CSV
imports) so that sending one twice applies it once. Every consumer deduplicates by event id, so two
tenants that both number their events ``1, 2, 3…`` must not collide: the envelope id is derived from
the tenant and the client's id, the same way on every way in.
"""

from __future__ import annotations

import uuid

__all__ = ["scoped_event_id"]

_NAMESPACE = uuid.UUID("5b0f6f0e-3c1a-5d7e-9a43-7a3e2c0d1b55")  # fixed forever: stored ids depend on it


def scoped_event_id(tenant_id: str, client_event_id: str) -> str:
    """The envelope id of the event ``client_event_id`` of ``tenant_id``: stable, and distinct per tenant."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}\x1fid\x1f{client_event_id}"))
