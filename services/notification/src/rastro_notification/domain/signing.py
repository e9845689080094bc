"""Standard Webhooks signatures (https://www.standardwebhooks.com), DESIGN §7.

A secret is ``whsec_`` + base64 of the key bytes. The signed content is ``"{msg_id}.{timestamp}.{body}"``
and ``webhook-signature`` carries one ``v1,<base64 HMAC-SHA256>`` per secret, space-separated: during a
rotation both the old and the new secret sign, so a receiver holding either one verifies.

Receivers such as the official ``standardwebhooks`` library decode the body as UTF-8 before verifying;
the bodies we send are JSON, so that holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
from collections.abc import Sequence

__all__ = [
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "SECRET_PREFIX",
    "InvalidSecret",
    "decode_secret",
    "generate_secret",
    "headers_for",
    "sign",
]

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


class InvalidSecret(ValueError):
    """A signing secret that is not ``whsec_`` + non-empty base64."""


def generate_secret() -> str:
    """A fresh secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(SECRET_BYTES)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_…`` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"a signing secret starts with {SECRET_PREFIX!r}")
    # Padding is optional in the wild (the official library accepts secrets without it).
    encoded = secret.removeprefix(SECRET_PREFIX).rstrip("=")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise InvalidSecret("a signing secret is base64 after the prefix") from exc
    if not key:
        raise InvalidSecret("a signing secret may not be empty")
    return key


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: one ``v1,<signature>`` per secret, in the given order."""
    if isinstance(secrets, str):
        raise TypeError("secrets is a sequence of secrets, not one secret")
    if not secrets:
        raise InvalidSecret("at least one secret is needed to sign")
    content = f"{msg_id}.{timestamp}.".encode() + body
    signatures = (
        "v1," + base64.b64encode(hmac.digest(decode_secret(s), content, hashlib.sha256)).decode("ascii")
        for s in secrets
    )
    return " ".join(signatures)


def headers_for(msg_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt."""
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secrets, msg_id, timestamp, body),
    }
