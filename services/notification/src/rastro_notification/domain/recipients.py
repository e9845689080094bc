"""A shipment's recipient, as personal data: normalized, checked, masked for display, and hashed for
the opt-out list (which therefore holds no address at all).
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = [
    "InvalidAddress",
    "mask_address",
    "normalize_email",
    "normalize_phone",
    "opt_out_hash",
]

_EMAIL = re.compile(
    r"[^@\s<>\"(),;:\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+"
)
_PHONE = re.compile(r"\+[1-9][0-9]{7,14}")


class InvalidAddress(ValueError):
    """An e-mail address or phone number we cannot send to."""


def normalize_email(address: str) -> str:
    """Trimmed, with the domain lower-cased; raises ``InvalidAddress``."""
    address = address.strip()
    if len(address) > 254 or not _EMAIL.fullmatch(address):
        raise InvalidAddress("not an e-mail address (local@domain.tld)")
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def normalize_phone(number: str) -> str:
    """E.164 (``+5511987654321``); spaces, dashes, dots and parentheses are dropped."""
    digits = re.sub(r"[\s().-]", "", number)
    if not _PHONE.fullmatch(digits):
        raise InvalidAddress("not a phone number in international form, e.g. +5511987654321")
    return digits


def opt_out_hash(tenant_id: str, address: str) -> str:
    """A keyed hash of a normalized address: the opt-out list can be checked but not read back."""
    key = f"rastro-opt-out:{tenant_id}".encode()
    return hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()


def mask_address(address: str) -> str:
    """``j***@example.com`` / ``+55*******4321``: enough to recognise, not to contact."""
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return f"{address[:3]}{'*' * max(len(address) - 7, 3)}{address[-4:]}"
