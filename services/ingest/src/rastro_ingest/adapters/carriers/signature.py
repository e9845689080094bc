"""Authenticating carrier pushes: HMAC-SHA256 of the raw body, or a shared-secret header.

Carriers differ: some sign the body (``X-Rastro-Signature: sha256=<hex>``), others can only send a
static header (``X-Rastro-Webhook-Secret: <secret>``). Both compare in constant time. A replayed push
is harmless: its events get the same deterministic ids.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["SECRET_HEADER", "SIGNATURE_HEADER", "sign_body", "verify_push"]

SIGNATURE_HEADER = "x-rastro-signature"
SECRET_HEADER = "x-rastro-webhook-secret"


def sign_body(secret: str, body: bytes) -> str:
    """The value of ``X-Rastro-Signature`` for this body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_push(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the body's signature, or else the shared-secret header, matches ``secret``.

    ``headers`` must be case-insensitive (Starlette's are) or use lower-case names."""
    signature = headers.get(SIGNATURE_HEADER)
    if signature is not None:
        return hmac.compare_digest(signature.strip().encode(), sign_body(secret, body).encode())
    shared = headers.get(SECRET_HEADER)
    if shared is not None:
        return hmac.compare_digest(shared.strip().encode(), secret.encode())
    return False
