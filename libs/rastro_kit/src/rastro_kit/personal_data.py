"""Encryption at rest of personal data: AES-256-GCM with per-tenant envelope keys (docs/privacy.md).

- The master keys (KEKs) live in ``rastro_kit.master_key``: the current one wraps, previous ones
  (``RASTRO_MASTER_KEY_PREVIOUS``) only unwrap, each wrapped key records which one wrapped it
  (``kek_id``). ``rewrap_data_keys`` moves every key onto the current master key.
- Each service keeps its tenants' keys in its own ``data_keys`` table, wrapped by the master key. Per
  tenant one ``data`` key is ``active``; rotation adds a new one and re-encrypts (``rotate_column``).
- A sealed value is ``v1:<key_id>:<base64(nonce + ciphertext)>``; the AAD binds tenant and column, so a
  value copied to another tenant's row or another column does not open.
- ``blind_index`` is an HMAC-SHA256 of the normalized e-mail, phone or document under the tenant's
  ``index`` key, stored wrapped beside its data keys: data-subject requests find rows without decrypting
  everything, and the indexes survive a new master key. A tenant whose keys predate migration 0009 gets
  the index key the code derived then (``legacy_index_key``), so its stored indexes stay valid.
- Crypto-shredding: ``destroy_tenant_keys`` deletes a tenant's keys; every value sealed with them becomes
  unreadable at once, and its blind indexes meaningless.

Unwrapped keys are cached in the process for ``CACHE_TTL_S``: a key destroyed by another replica stops
opening here within that time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rastro_kit import master_key as _kek
from rastro_kit.logs import get_logger
from rastro_kit.master_key import (
    DecryptionError,
    MasterKeyMissing,
    PersonalDataError,
    current_kek_id,
    kek_id,
    known_kek_ids,
    load_master_key,
    load_previous_master_keys,
    require_master_key,
    unwrap_key,
    unwrap_key_with_master,
    wrap_key,
)

__all__ = [
    "CACHE_TTL_S",
    "DecryptionError",
    "EncryptedColumn",
    "KeyDestroyed",
    "MasterKeyMissing",
    "PersonalDataError",
    "blind_index",
    "blind_index_with",
    "check_master_keys",
    "destroy_tenant_keys",
    "drop_retired_keys",
    "forget_cached_keys",
    "is_sealed",
    "kek_id",
    "legacy_index_key",
    "load_master_key",
    "load_previous_master_keys",
    "normalize_identifier",
    "open_text",
    "open_value",
    "require_master_key",
    "require_master_keys",
    "rewrap_data_keys",
    "rotate_column",
    "rotate_tenant_key",
    "seal_value",
    "use_master_key",
]

PREFIX = "v1"
CACHE_TTL_S = 300.0
_KEY_BYTES = 32
_NONCE_BYTES = 12
log = get_logger(__name__)


def use_master_key(key: bytes, previous: tuple[bytes, ...] = ()) -> None:
    """Tests: run with this master key and these previous ones (and forget every cached key)."""
    _kek.use_master_key(key, previous)
    forget_cached_keys()


# -- data keys -----------------------------------------------------------------------------------------

_cache: dict[str, tuple[bytes, float]] = {}
_index_cache: dict[str, tuple[bytes, float]] = {}  # tenant -> its blind-index key


def forget_cached_keys() -> None:
    _cache.clear()
    _index_cache.clear()


_ACTIVE = (
    "SELECT key_id, wrapped, kek_id FROM data_keys WHERE tenant_id = $1 AND purpose = $2 AND state = 'active'"
)


async def _insert_key(conn: Any, key_id: str, tenant_id: str, plain: bytes, purpose: str) -> None:
    """Store a new active key (nothing when another process stored the tenant's one first)."""
    wrapped, kek = wrap_key(plain, key_id, tenant_id)
    await conn.execute(
        "INSERT INTO data_keys (key_id, tenant_id, wrapped, kek_id, purpose) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (tenant_id, purpose) WHERE state = 'active' DO NOTHING",
        key_id,
        tenant_id,
        wrapped,
        kek,
        purpose,
    )


async def _active_key(conn: Any, tenant_id: str) -> tuple[str, bytes]:
    row = await conn.fetchrow(_ACTIVE, tenant_id, "data")
    if row is None:
        await _insert_key(
            conn, "dk_" + secrets.token_hex(8), tenant_id, secrets.token_bytes(_KEY_BYTES), "data"
        )
        row = await conn.fetchrow(_ACTIVE, tenant_id, "data")
    key_id = str(row["key_id"])
    return key_id, _cached(
        key_id, lambda: unwrap_key(bytes(row["wrapped"]), key_id, tenant_id, row["kek_id"])
    )


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
    row = await conn.fetchrow(
        "SELECT wrapped, kek_id FROM data_keys WHERE key_id = $1 AND tenant_id = $2 AND purpose = 'data'",
        key_id,
        tenant_id,
    )
    if row is None:
        raise KeyDestroyed(f"data key {key_id} of tenant {tenant_id!r} does not exist (destroyed?)")
    return _cached(key_id, lambda: unwrap_key(bytes(row["wrapped"]), key_id, tenant_id, row["kek_id"]))


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


class KeyDestroyed(DecryptionError):
    """The value's data key is gone: the tenant was crypto-shredded (or the key dropped)."""


async def open_value(
    conn: Any, tenant_id: str, column: str, token: str | bytes | None, *, shredded_as_none: bool = False
) -> bytes | None:
    """Decrypt a sealed value; None stays None, and so does a value written before encryption was on
    (until ``rotate_column`` seals it). Raises ``DecryptionError`` — except, with ``shredded_as_none``,
    for a value whose key was destroyed (a shredded tenant): None, as if erased. A tampered value or a
    missing master key still raises."""
    if token is None:
        return None
    if not is_sealed(token):
        return token if isinstance(token, bytes) else token.encode()
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    key_id, blob = parse_token(text)
    try:
        dek = await _key_by_id(conn, tenant_id, key_id)
    except KeyDestroyed:
        if shredded_as_none:
            return None
        raise
    return open_with(dek, tenant_id, column, blob)


async def open_text(
    conn: Any, tenant_id: str, column: str, token: str | bytes | None, *, shredded_as_none: bool = False
) -> str | None:
    opened = await open_value(conn, tenant_id, column, token, shredded_as_none=shredded_as_none)
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


def legacy_index_key(master: bytes, tenant_id: str) -> bytes:
    """The index key the code derived from the master key before migration 0009."""
    return hmac.new(master, f"blind-index|{tenant_id}".encode(), hashlib.sha256).digest()


def blind_index_with(index_key: bytes, kind: str, value: str) -> str:
    """Pure: ``<kind>:<hex HMAC-SHA256>`` of the normalized value: equal for equal identifiers under one
    index key, meaningless without it."""
    mac = hmac.new(index_key, normalize_identifier(kind, value).encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{mac[:40]}"


async def blind_index(conn: Any, tenant_id: str, kind: str, value: str) -> str:
    """The blind index of an identifier under the tenant's index key (made on first use). Raises
    ``ValueError`` for a kind without one."""
    normalize_identifier(kind, value)  # an unknown kind fails before any key is made
    return blind_index_with(await _index_key(conn, tenant_id), kind, value)


async def _index_key(conn: Any, tenant_id: str) -> bytes:
    hit = _index_cache.get(tenant_id)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        return hit[0]
    row = await conn.fetchrow(_ACTIVE, tenant_id, "index")
    if row is None:
        plain = await _first_index_key(conn, tenant_id)
        await _insert_key(conn, "ik_" + secrets.token_hex(8), tenant_id, plain, "index")
        row = await conn.fetchrow(_ACTIVE, tenant_id, "index")
    key = unwrap_key(bytes(row["wrapped"]), str(row["key_id"]), tenant_id, row["kek_id"])
    _index_cache[tenant_id] = (key, now + CACHE_TTL_S)
    return key


async def _first_index_key(conn: Any, tenant_id: str) -> bytes:
    """A tenant with data keys from before migration 0009 has blind indexes derived from the master key
    that wrapped them: keep that key. Any other tenant gets a random one (after a shred, the old indexes
    must not match again)."""
    legacy = await conn.fetchrow(
        "SELECT key_id, wrapped FROM data_keys WHERE tenant_id = $1 AND purpose = 'data'"
        " AND kek_id IS NULL LIMIT 1",
        tenant_id,
    )
    if legacy is None:
        return secrets.token_bytes(_KEY_BYTES)
    _, master = unwrap_key_with_master(bytes(legacy["wrapped"]), str(legacy["key_id"]), tenant_id, None)
    return legacy_index_key(master, tenant_id)


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
    await _index_key(conn, tenant_id)  # derived from a legacy data key, if any: before it goes
    async with conn.transaction():
        await conn.execute(
            "UPDATE data_keys SET state = 'retired', retired_at = now()"
            " WHERE tenant_id = $1 AND purpose = 'data' AND state = 'active'",
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
        "SELECT key_id FROM data_keys WHERE tenant_id = $1 AND purpose = 'data' AND state = 'retired'",
        tenant_id,
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
    """Crypto-shred a tenant: delete its data keys and its blind-index key; its sealed values never open
    again and its blind indexes match nothing any more. The count of keys deleted."""
    rows = await conn.fetch("DELETE FROM data_keys WHERE tenant_id = $1 RETURNING key_id", tenant_id)
    for row in rows:
        _cache.pop(str(row["key_id"]), None)
    _index_cache.pop(tenant_id, None)
    return len(rows)


# -- master-key rotation -------------------------------------------------------------------------------


async def _keep_legacy_index_keys(conn: Any, tenant_id: str | None) -> int:
    """Store the index key of every tenant with pre-0009 data keys and none yet: once those are re-wrapped
    nothing would tell which master key derived its indexes. The count stored."""
    tenants = await conn.fetch(
        "SELECT DISTINCT d.tenant_id FROM data_keys d WHERE d.purpose = 'data' AND d.kek_id IS NULL"
        " AND ($1::text IS NULL OR d.tenant_id = $1) AND NOT EXISTS (SELECT 1 FROM data_keys i"
        " WHERE i.tenant_id = d.tenant_id AND i.purpose = 'index')",
        tenant_id,
    )
    for row in tenants:
        await _index_key(conn, str(row["tenant_id"]))
    return len(tenants)


async def rewrap_data_keys(conn: Any, *, batch: int = 500, tenant_id: str | None = None) -> dict[str, int]:
    """Re-wrap with the current master key every key (data and index) wrapped by another one, ``batch``
    keys per transaction; the values sealed with them are untouched. Resumable and idempotent. Counts:
    ``rewrapped``, ``unreadable`` (no configured master key opens them: left as they are), ``remaining``
    (keys still not on the current master key) and ``index_keys_created``."""
    created = await _keep_legacy_index_keys(conn, tenant_id)
    current = current_kek_id()
    rewrapped = unreadable = 0
    after = ""
    while True:
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT key_id, tenant_id, wrapped, kek_id FROM data_keys"
                " WHERE kek_id IS DISTINCT FROM $1 AND key_id > $2 AND ($3::text IS NULL OR tenant_id = $3)"
                " ORDER BY key_id LIMIT $4 FOR UPDATE SKIP LOCKED",
                current,
                after,
                tenant_id,
                batch,
            )
            for row in rows:
                key_id, tenant = str(row["key_id"]), str(row["tenant_id"])
                try:
                    plain = unwrap_key(bytes(row["wrapped"]), key_id, tenant, row["kek_id"])
                except DecryptionError:
                    unreadable += 1
                    continue
                wrapped, kek = wrap_key(plain, key_id, tenant)
                await conn.execute(
                    "UPDATE data_keys SET wrapped = $2, kek_id = $3 WHERE key_id = $1", key_id, wrapped, kek
                )
                rewrapped += 1
        if rows:
            after = str(rows[-1]["key_id"])
        if len(rows) < batch:
            break
    remaining = await conn.fetchval(
        "SELECT count(*) FROM data_keys WHERE kek_id IS DISTINCT FROM $1"
        " AND ($2::text IS NULL OR tenant_id = $2)",
        current,
        tenant_id,
    )
    return {
        "rewrapped": rewrapped,
        "unreadable": unreadable,
        "remaining": int(remaining),
        "index_keys_created": created,
    }


async def check_master_keys(conn: Any) -> dict[str, int]:
    """Start-up: raise ``MasterKeyMissing`` when keys here are wrapped by a master key this process does
    not have (rather than failing at the first read), and keep the legacy index keys. Answers the count of
    keys per ``kek_id`` (``"legacy"`` for pre-0009 keys)."""
    known = known_kek_ids()
    counts = {
        str(r["kek"]): int(r["n"])
        for r in await conn.fetch(
            "SELECT coalesce(kek_id, 'legacy') AS kek, count(*) AS n FROM data_keys GROUP BY 1"
        )
    }
    missing = {k: n for k, n in counts.items() if k != "legacy" and k not in known}
    if missing:
        named = ", ".join(f"{n} keys by {k}" for k, n in sorted(missing.items()))
        raise MasterKeyMissing(
            f"data_keys holds keys wrapped by master keys this service does not have ({named}): set the"
            " right RASTRO_MASTER_KEY, or add the old key to RASTRO_MASTER_KEY_PREVIOUS (docs/privacy.md)"
        )
    try:
        await _keep_legacy_index_keys(conn, None)
        legacy = await conn.fetchrow(
            "SELECT key_id, tenant_id, wrapped FROM data_keys WHERE kek_id IS NULL LIMIT 1"
        )
        if legacy is not None:
            unwrap_key(bytes(legacy["wrapped"]), str(legacy["key_id"]), str(legacy["tenant_id"]), None)
    except DecryptionError as exc:
        raise MasterKeyMissing(
            f"keys wrapped before migration 0009 do not unwrap with RASTRO_MASTER_KEY nor any of"
            f" RASTRO_MASTER_KEY_PREVIOUS ({exc}): the master key was changed without its old value"
        ) from exc
    return counts


async def require_master_keys(development: bool, pool: Any) -> None:
    """Start-up of a service that stores personal data: the master keys are configured
    (``require_master_key``) and open every key in its ``data_keys``."""
    require_master_key(development)
    async with pool.acquire() as conn:
        counts = await check_master_keys(conn)
    # which master keys still wrap keys here: after a rotation, "legacy" and old ids should go to 0
    log.info("master_keys_checked", current_kek_id=current_kek_id(), keys_by_kek_id=counts)
