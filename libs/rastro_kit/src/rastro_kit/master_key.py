"""The master keys (KEKs) of the personal-data encryption: where they come from, how they are named,
and wrapping a tenant key with them (docs/privacy.md, "Rotating the master key").

- The current key wraps every new key: ``RASTRO_MASTER_KEY`` (base64 of 32 bytes), else the file named by
  ``RASTRO_MASTER_KEY_FILE``, else (development only) ``.rastro/master.key``, generated once.
- Previous keys only unwrap: ``RASTRO_MASTER_KEY_PREVIOUS`` (comma-separated base64 keys) and/or the file
  named by ``RASTRO_MASTER_KEY_PREVIOUS_FILE`` (comma- or newline-separated). They let a service read the
  keys still wrapped by an old master key until ``rewrap_data_keys`` has moved them all to the new one.
- A master key is named by its fingerprint (``kek_id``), recorded beside each wrapped key: unwrapping
  picks the right master key instead of trying them all, and an operator sees which keys still need the
  old one. The fingerprint is an HMAC under the key itself, so it says nothing about the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "DEFAULT_KEY_FILE",
    "DecryptionError",
    "MasterKeyMissing",
    "PersonalDataError",
    "current_kek_id",
    "kek_id",
    "known_kek_ids",
    "load_master_key",
    "load_previous_master_keys",
    "master_key",
    "require_master_key",
    "unwrap_key",
    "use_master_key",
    "wrap_key",
]

KEY_BYTES = 32
NONCE_BYTES = 12
DEFAULT_KEY_FILE = Path(".rastro") / "master.key"


class PersonalDataError(RuntimeError):
    """Base of the errors of the personal-data encryption."""


class MasterKeyMissing(PersonalDataError):
    """No usable master key is configured (production refuses to start)."""


class DecryptionError(PersonalDataError):
    """A sealed value does not open: tampered, another tenant's or column's, or its key was destroyed."""


def kek_id(master: bytes) -> str:
    """The name of a master key: 16 hex of HMAC-SHA256(master, "rastro-kek-id")."""
    return hmac.new(master, b"rastro-kek-id", hashlib.sha256).hexdigest()[:16]


# -- loading -------------------------------------------------------------------------------------------


def load_master_key(*, development: bool | None = None, env: Mapping[str, str] | None = None) -> bytes:
    """The current master key: ``RASTRO_MASTER_KEY``, else ``RASTRO_MASTER_KEY_FILE``, else (development
    only) ``.rastro/master.key``, created on first use. Raises ``MasterKeyMissing``."""
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


def load_previous_master_keys(env: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """The previous master keys (unwrap only): ``RASTRO_MASTER_KEY_PREVIOUS`` then the keys in the file
    named by ``RASTRO_MASTER_KEY_PREVIOUS_FILE``. Raises ``MasterKeyMissing`` for a malformed one."""
    source = os.environ if env is None else env
    keys: list[bytes] = []
    for i, text in enumerate(_split(source.get("RASTRO_MASTER_KEY_PREVIOUS", ""))):
        keys.append(_decode_key(text, f"RASTRO_MASTER_KEY_PREVIOUS (key {i + 1})"))
    path_name = source.get("RASTRO_MASTER_KEY_PREVIOUS_FILE")
    if path_name:
        for i, text in enumerate(_split(Path(path_name).read_text())):
            keys.append(_decode_key(text, f"{path_name} (key {i + 1})"))
    return tuple(keys)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


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
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(key).decode() + "\n")
    return key


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise MasterKeyMissing(f"{where} is not base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyMissing(f"{where} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


# -- the process's key ring ----------------------------------------------------------------------------

_master: bytes | None = None
_previous: tuple[bytes, ...] | None = None


def require_master_key(development: bool) -> None:
    """Called at start-up by every service that stores personal data: fail now, not at the first write."""
    global _master, _previous
    _master = load_master_key(development=development)
    _previous = load_previous_master_keys()


def use_master_key(key: bytes, previous: tuple[bytes, ...] = ()) -> None:
    """Tests: run with this master key and these previous ones."""
    global _master, _previous
    _master, _previous = key, tuple(previous)


def master_key() -> bytes:
    global _master
    if _master is None:
        _master = load_master_key()
    return _master


def _previous_keys() -> tuple[bytes, ...]:
    global _previous
    if _previous is None:
        _previous = load_previous_master_keys()
    return _previous


def current_kek_id() -> str:
    return kek_id(master_key())


def known_kek_ids() -> set[str]:
    """The fingerprints of the current and previous master keys."""
    return {kek_id(k) for k in (master_key(), *_previous_keys())}


# -- wrapping ------------------------------------------------------------------------------------------


def _aad(key_id: str, tenant_id: str) -> bytes:
    return f"dek|{tenant_id}|{key_id}".encode()


def wrap_key(plain: bytes, key_id: str, tenant_id: str) -> tuple[bytes, str]:
    """``(wrapped, kek_id)``: the key encrypted by the current master key, and that key's name."""
    master = master_key()
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, plain, _aad(key_id, tenant_id)), kek_id(master)


def unwrap_key(wrapped: bytes, key_id: str, tenant_id: str, kek: str | None) -> bytes:
    """The plain key. ``kek`` names the master key that wrapped it; None (wrapped before migration
    0009) tries the current key, then the previous ones. Raises ``DecryptionError``."""
    plain, _ = unwrap_key_with_master(wrapped, key_id, tenant_id, kek)
    return plain


def unwrap_key_with_master(
    wrapped: bytes, key_id: str, tenant_id: str, kek: str | None
) -> tuple[bytes, bytes]:
    """``(plain key, the master key that unwrapped it)``; see ``unwrap_key``."""
    ring = (master_key(), *_previous_keys())
    candidates = ring if kek is None else tuple(k for k in ring if kek_id(k) == kek)
    if not candidates:
        raise DecryptionError(
            f"key {key_id} is wrapped by master key {kek}, which this process does not have:"
            " set it as RASTRO_MASTER_KEY or add it to RASTRO_MASTER_KEY_PREVIOUS (docs/privacy.md)"
        )
    for master in candidates:
        try:
            plain = AESGCM(master).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _aad(key_id, tenant_id)
            )
        except InvalidTag:
            continue
        return plain, master
    raise DecryptionError(f"key {key_id} does not unwrap with any configured master key")
