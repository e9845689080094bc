"""Encryption at rest of personal data: AES-256-GCM with per-tenant envelope keys (docs/privacy.md).

- The master key (KEK) comes from ``RASTRO_MASTER_KEY`` (base64 of 32 bytes) or the file named by
  ``RASTRO_MASTER_KEY_FILE``; in development mode it is generated once into ``.rastro/master.key``.
  Production refuses to start without one (``require_master_key``).
- Each service keeps its tenants' data keys (DEKs) in its own ``data_keys`` table, wrapped by the master
  key. One key per tenant is ``active``; rotation adds a new one and re-encrypts (``rotate_column``).
- A sealed value is ``v1:<key_id>:<base64(nonce + ciphertext)>``; the AAD binds tenant and column, so a
  value copied to another tenant's row or another column does not open.
- ``blind_index`` is an HMAC-SHA256 of the normalized e-mail, phone or document with a per-tenant key
  derived from the master key: data-subject requests find rows without decrypting everything.
- Crypto-shredding: ``destroy_tenant_keys`` deletes a tenant's data keys; every value sealed with them
  becomes unreadable at once.

Unwrapped keys are cached in the process for ``CACHE_TTL_S``: a key destroyed by another replica stops
opening here within that time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CACHE_TTL_S",
    "DecryptionError",
    "EncryptedColumn",
    "MasterKeyMissing",
    "PersonalDataError",
    "blind_index",
    "destroy_tenant_keys",
    "drop_retired_keys",
    "forget_cached_keys",
    "is_sealed",
    "load_master_key",
    "normalize_identifier",
    "open_text",
    "open_value",
    "require_master_key",
    "rotate_column",
    "rotate_tenant_key",
    "seal_value",
    "use_master_key",
]

PREFIX = "v1"
CACHE_TTL_S = 300.0
_KEY_BYTES = 32
_NONCE_BYTES = 12
DEFAULT_KEY_FILE = Path(".rastro") / "master.key"


class PersonalDataError(RuntimeError):
    """Base of the errors of this module."""


class MasterKeyMissing(PersonalDataError):
    """No master key is configured (production refuses to start)."""


class DecryptionError(PersonalDataError):
    """A sealed value does not open: tampered, another tenant's or column's, or its key was destroyed."""


# -- the master key ------------------------------------------------------------------------------------

_master: bytes | None = None


def load_master_key(*, development: bool | None = None, env: dict[str, str] | None = None) -> bytes:
    """The master key: ``RASTRO_MASTER_KEY``, else ``RASTRO_MASTER_KEY_FILE``, else (development only)
    ``.rastro/master.key``, created on first use. Raises ``MasterKeyMissing``."""
    source = os.environ if env is None else env
    if development is None:
        development = source.get("RASTRO_MODE", "production") == "development"
    given = source.get("RASTRO_MASTER_KEY")
    if given:
        return _decode_key(given, "RASTRO_MASTER_KEY")
    path_name = source.get("RASTRO_MASTER_KEY_FILE")
    if path_name:
        return _decode_key(Path(path_name).read_text().strip(), path_name)
    if not development:
        raise MasterKeyMissing(
            "set RASTRO_MASTER_KEY (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)"
            " or RASTRO_MASTER_KEY_FILE: personal data is encrypted with it (docs/privacy.md)"
        )
    return _dev_key(DEFAULT_KEY_FILE)


def _dev_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process is writing it right now
            text = path.read_text().strip()
            if text:
                return _decode_key(text, str(path))
            time.sleep(0.02)
        raise MasterKeyMissing(f"{path} is empty") from None
    key = secrets.token_bytes(_KEY_BYTES)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")
    return key


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise MasterKeyMissing(f"{where} is not base64") from None
    if len(key) != _KEY_BYTES:
        raise MasterKeyMissing(f"{where} must decode to {_KEY_BYTES} bytes, not {len(key)}")
    return key


def require_master_key(development: bool) -> None:
    """Called at start-up by every service that stores personal data: fail now, not at the first write."""
    global _master
    _master = load_master_key(development=development)


def _master_key() -> bytes:
    global _master
    if _master is None:
        _master = load_master_key()
    return _master


def use_master_key(key: bytes) -> None:
    """Tests: run with this master key (and forget every cached data key)."""
    global _master
    _master = key
    forget_cached_keys()


# -- data keys -----------------------------------------------------------------------------------------

_cache: dict[str, tuple[bytes, float]] = {}


def forget_cached_keys() -> None:
    _cache.clear()


def _wrap(dek: bytes, key_id: str, tenant_id: str) -> bytes:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + AESGCM(_master_key()).encrypt(nonce, dek, f"dek|{tenant_id}|{key_id}".encode())


def _unwrap(wrapped: bytes, key_id: str, tenant_id: str) -> bytes:
    try:
        return AESGCM(_master_key()).decrypt(
            wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], f"dek|{tenant_id}|{key_id}".encode()
        )
    except InvalidTag:
        raise DecryptionError(f"data key {key_id} does not unwrap with this master key") from None


async def _active_key(conn: Any, tenant_id: str) -> tuple[str, bytes]:
    row = await conn.fetchrow(
        "SELECT key_id, wrapped FROM data_keys WHERE tenant_id = $1 AND state = 'active'", tenant_id
    )
    if row is None:
        key_id = "dk_" + secrets.token_hex(8)
        await conn.execute(
            "INSERT INTO data_keys (key_id, tenant_id, wrapped) VALUES ($1, $2, $3)"
            " ON CONFLICT (tenant_id) WHERE state = 'active' DO NOTHING",
            key_id,
            tenant_id,
            _wrap(secrets.token_bytes(_KEY_BYTES), key_id, tenant_id),
        )
        row = await conn.fetchrow(
            "SELECT key_id, wrapped FROM data_keys WHERE tenant_id = $1 AND state = 'active'", tenant_id
        )
    key_id = str(row["key_id"])
    return key_id, _cached(key_id, lambda: _unwrap(bytes(row["wrapped"]), key_id, tenant_id))


def _cached(key_id: str, load: Callable[[], bytes]) -> bytes:
    hit = _cache.get(key_id)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    dek = load()
    _cache[key_id] = (dek, now + CACHE_TTL_S)
    return dek


async def _key_by_id(conn: Any, tenant_id: str, key_id: str) -> bytes:
    hit = _cache.get(key_id)
    if hit is not None and hit[1] > time.monotonic():
        return hit[0]
    wrapped = await conn.fetchval(
        "SELECT wrapped FROM data_keys WHERE key_id = $1 AND tenant_id = $2", key_id, tenant_id
    )
    if wrapped is None:
        raise DecryptionError(f"data key {key_id} of tenant {tenant_id!r} does not exist (destroyed?)")
    return _cached(key_id, lambda: _unwrap(bytes(wrapped), key_id, tenant_id))


# -- sealing values ------------------------------------------------------------------------------------


def _aad(tenant_id: str, column: str) -> bytes:
    return f"{tenant_id}|{column}".encode()


def seal_with(dek: bytes, key_id: str, tenant_id: str, column: str, plaintext: bytes) -> str:
    """Pure: ``v1:<key_id>:<base64(nonce + ciphertext)>``."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(dek).encrypt(nonce, plaintext, _aad(tenant_id, column))
    return f"{PREFIX}:{key_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"


def parse_token(token: str) -> tuple[str, bytes]:
    """``(key_id, nonce + ciphertext)`` of a sealed value; raises ``DecryptionError``."""
    parts = token.split(":", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        raise DecryptionError("not a sealed value")
    try:
        return parts[1], base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raise DecryptionError("sealed value is not base64") from None


def open_with(dek: bytes, tenant_id: str, column: str, blob: bytes) -> bytes:
    try:
        return AESGCM(dek).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(tenant_id, column))
    except InvalidTag:
        raise DecryptionError(f"value of {column} does not open for tenant {tenant_id!r}") from None


def is_sealed(value: str | bytes | None) -> bool:
    if isinstance(value, bytes):
        return value.startswith(PREFIX.encode() + b":dk_")
    return isinstance(value, str) and value.startswith(PREFIX + ":dk_")


async def seal_value(conn: Any, tenant_id: str, column: str, plaintext: str | bytes | None) -> str | None:
    """Encrypt with the tenant's active data key (created on first use); None stays None."""
    if plaintext is None:
        return None
    key_id, dek = await _active_key(conn, tenant_id)
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    return seal_with(dek, key_id, tenant_id, column, data)


async def open_value(conn: Any, tenant_id: str, column: str, token: str | bytes | None) -> bytes | None:
    """Decrypt a sealed value; None stays None, and so does a value written before encryption was on
    (until ``rotate_column`` seals it). Raises ``DecryptionError``."""
    if token is None:
        return None
    if not is_sealed(token):
        return token if isinstance(token, bytes) else token.encode()
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    key_id, blob = parse_token(text)
    return open_with(await _key_by_id(conn, tenant_id, key_id), tenant_id, column, blob)


async def open_text(conn: Any, tenant_id: str, column: str, token: str | bytes | None) -> str | None:
    opened = await open_value(conn, tenant_id, column, token)
    return None if opened is None else opened.decode()


# -- blind index ---------------------------------------------------------------------------------------


def normalize_identifier(kind: str, value: str) -> str:
    """What two spellings of one e-mail, phone or document have in common."""
    value = value.strip()
    if kind == "email":
        return value.lower()
    if kind in ("phone", "document"):
        return re.sub(r"[^0-9]", "", value)
    raise ValueError(f"no blind index for {kind!r}")


def blind_index(tenant_id: str, kind: str, value: str, master: bytes | None = None) -> str:
    """``<kind>:<hex HMAC-SHA256>`` of the normalized value, with a per-tenant key derived from the
    master key: equal for equal identifiers of one tenant, meaningless without the master key."""
    index_key = hmac.new(
        master or _master_key(), f"blind-index|{tenant_id}".encode(), hashlib.sha256
    ).digest()
    mac = hmac.new(index_key, normalize_identifier(kind, value).encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{mac[:40]}"


# -- rotation and shredding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EncryptedColumn:
    """A column holding sealed values: ``table.column``, its row key, and the AAD column name."""

    table: str
    column: str
    key: str  # a unique column of the table (the batch cursor)
    tenant: str = "tenant_id"
    binary: bool = False  # bytea holding the token's ASCII

    @property
    def aad(self) -> str:
        return f"{self.table}.{self.column}"


async def rotate_tenant_key(conn: Any, tenant_id: str) -> str:
    """Retire the tenant's active key (it still opens old values) and make a new one; its id."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE data_keys SET state = 'retired', retired_at = now()"
            " WHERE tenant_id = $1 AND state = 'active'",
            tenant_id,
        )
        key_id, _ = await _active_key(conn, tenant_id)
    return key_id


async def rotate_column(conn: Any, tenant_id: str, col: EncryptedColumn, *, batch: int = 500) -> int:
    """Re-encrypt every value of ``col`` not sealed with the tenant's active key, ``batch`` rows per
    transaction. Idempotent and resumable: a stopped run leaves only rows still to do. Returns the count."""
    done = 0
    while True:
        async with conn.transaction():
            key_id, dek = await _active_key(conn, tenant_id)
            marker = f"{PREFIX}:{key_id}:"
            value = f"convert_from({col.column}, 'UTF8')" if col.binary else col.column
            rows = await conn.fetch(
                f"SELECT {col.key} AS k, {col.column} AS v FROM {col.table} WHERE {col.tenant} = $1"
                f" AND {col.column} IS NOT NULL AND left({value}, $2) <> $3"
                f" ORDER BY {col.key} LIMIT $4 FOR UPDATE SKIP LOCKED",
                tenant_id,
                len(marker),
                marker,
                batch,
            )
            for row in rows:
                token = row["v"]
                if is_sealed(token):
                    plain = await open_value(conn, tenant_id, col.aad, token)
                else:  # written before encryption was turned on: sealed for the first time now
                    plain = token if isinstance(token, bytes) else str(token).encode()
                assert plain is not None
                sealed = seal_with(dek, key_id, tenant_id, col.aad, plain)
                await conn.execute(
                    f"UPDATE {col.table} SET {col.column} = $2 WHERE {col.key} = $1",
                    row["k"],
                    sealed.encode() if col.binary else sealed,
                )
        done += len(rows)
        if len(rows) < batch:
            return done


async def drop_retired_keys(conn: Any, tenant_id: str, columns: Sequence[EncryptedColumn]) -> int:
    """Delete retired keys no value of ``columns`` still uses; the count deleted."""
    retired = await conn.fetch(
        "SELECT key_id FROM data_keys WHERE tenant_id = $1 AND state = 'retired'", tenant_id
    )
    dropped = 0
    for row in retired:
        marker = f"{PREFIX}:{row['key_id']}:"
        used = False
        for col in columns:
            value = f"convert_from({col.column}, 'UTF8')" if col.binary else col.column
            used = used or await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {col.table} WHERE {col.tenant} = $1"
                f" AND left({value}, $2) = $3)",
                tenant_id,
                len(marker),
                marker,
            )
        if not used:
            await conn.execute("DELETE FROM data_keys WHERE key_id = $1", row["key_id"])
            _cache.pop(str(row["key_id"]), None)
            dropped += 1
    return dropped


async def destroy_tenant_keys(conn: Any, tenant_id: str) -> int:
    """Crypto-shred a tenant: delete its data keys; its sealed values never open again."""
    rows = await conn.fetch("DELETE FROM data_keys WHERE tenant_id = $1 RETURNING key_id", tenant_id)
    for row in rows:
        _cache.pop(str(row["key_id"]), None)
    return len(rows)
