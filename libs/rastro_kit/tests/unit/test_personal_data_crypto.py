"""The sealing of personal data, pure: AES-GCM round trip, tamper and AAD checks, the blind index, where
the master keys come from, their fingerprints, and unwrapping with a previous master key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

import pytest

from rastro_kit.master_key import kek_id, unwrap_key, wrap_key
from rastro_kit.personal_data import (
    DecryptionError,
    MasterKeyMissing,
    blind_index_with,
    is_sealed,
    legacy_index_key,
    load_master_key,
    load_previous_master_keys,
    open_with,
    parse_token,
    seal_with,
    use_master_key,
)

pytestmark = pytest.mark.unit
DEK = secrets.token_bytes(32)


def test_a_sealed_value_opens_to_the_same_bytes_and_shows_none_of_them() -> None:
    token = seal_with(DEK, "dk_1", "acme", "recipients.email", b"ana@example.com")
    assert token.startswith("v1:dk_1:") and is_sealed(token)
    assert "ana" not in token and "example" not in token
    key_id, blob = parse_token(token)
    assert key_id == "dk_1"
    assert open_with(DEK, "acme", "recipients.email", blob) == b"ana@example.com"
    assert seal_with(DEK, "dk_1", "acme", "c", b"x") != seal_with(DEK, "dk_1", "acme", "c", b"x")  # nonce


def test_a_tampered_value_does_not_open() -> None:
    _, blob = parse_token(seal_with(DEK, "dk_1", "acme", "c", b"secret"))
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        open_with(DEK, "acme", "c", flipped)


@pytest.mark.parametrize(("tenant", "column"), [("globex", "recipients.email"), ("acme", "recipients.name")])
def test_a_value_moved_to_another_tenant_or_column_does_not_open(tenant: str, column: str) -> None:
    _, blob = parse_token(seal_with(DEK, "dk_1", "acme", "recipients.email", b"ana@example.com"))
    with pytest.raises(DecryptionError):
        open_with(DEK, tenant, column, blob)


def test_another_key_does_not_open_it() -> None:
    _, blob = parse_token(seal_with(DEK, "dk_1", "acme", "c", b"x"))
    with pytest.raises(DecryptionError):
        open_with(secrets.token_bytes(32), "acme", "c", blob)


def test_the_blind_index_matches_spellings_of_one_identifier_within_a_tenant_only() -> None:
    master = secrets.token_bytes(32)
    acme, globex = legacy_index_key(master, "acme"), legacy_index_key(master, "globex")
    email = blind_index_with(acme, "email", " Ana@Example.COM ")
    assert email == blind_index_with(acme, "email", "ana@example.com")
    assert email != blind_index_with(globex, "email", "ana@example.com")
    assert email != blind_index_with(secrets.token_bytes(32), "email", "ana@example.com")
    assert blind_index_with(acme, "document", "123.456.789-09") == blind_index_with(
        acme, "document", "12345678909"
    )
    assert blind_index_with(acme, "phone", "+55 (11) 98765-4321") == blind_index_with(
        acme, "phone", "+5511987654321"
    )
    assert "ana" not in email and email.startswith("email:")


def test_the_stored_legacy_index_key_gives_the_indexes_computed_before_migration_0009() -> None:
    master = secrets.token_bytes(32)
    # what blind_index(tenant, kind, value, master) computed before index keys were stored
    inner = hmac.new(master, b"blind-index|acme", hashlib.sha256).digest()
    before = "email:" + hmac.new(inner, b"ana@example.com", hashlib.sha256).hexdigest()[:40]
    assert blind_index_with(legacy_index_key(master, "acme"), "email", "Ana@example.com") == before


def test_a_master_key_is_named_by_a_fingerprint_that_reveals_nothing_of_it() -> None:
    a, b = secrets.token_bytes(32), secrets.token_bytes(32)
    assert kek_id(a) == kek_id(a) != kek_id(b)
    assert len(kek_id(a)) == 16 and int(kek_id(a), 16) >= 0
    assert kek_id(a) not in a.hex() and kek_id(a) != hashlib.sha256(a).hexdigest()[:16]


def test_a_key_wrapped_by_the_old_master_unwraps_once_that_is_a_previous_key() -> None:
    old, new, dek = secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(32)
    try:
        use_master_key(old)
        wrapped, kek = wrap_key(dek, "dk_1", "acme")
        assert kek == kek_id(old)
        use_master_key(new)
        with pytest.raises(DecryptionError, match="RASTRO_MASTER_KEY_PREVIOUS"):
            unwrap_key(wrapped, "dk_1", "acme", kek)
        with pytest.raises(DecryptionError):
            unwrap_key(wrapped, "dk_1", "acme", None)  # legacy: tries the current key only
        use_master_key(new, (secrets.token_bytes(32), old))
        assert unwrap_key(wrapped, "dk_1", "acme", kek) == dek
        assert unwrap_key(wrapped, "dk_1", "acme", None) == dek  # legacy: found among the previous
        with pytest.raises(DecryptionError):
            unwrap_key(wrapped, "dk_1", "globex", kek)  # the AAD binds tenant and key id
    finally:
        use_master_key(load_master_key(development=True))  # the process's own again


def test_previous_master_keys_come_from_the_variable_and_the_file(tmp_path: Path) -> None:
    a, b, c = (secrets.token_bytes(32) for _ in range(3))
    text = [base64.b64encode(k).decode() for k in (a, b, c)]
    (tmp_path / "previous").write_text(f"{text[2]}\n")
    env = {
        "RASTRO_MASTER_KEY_PREVIOUS": f" {text[0]} ,{text[1]},",
        "RASTRO_MASTER_KEY_PREVIOUS_FILE": str(tmp_path / "previous"),
    }
    assert load_previous_master_keys(env) == (a, b, c)
    assert load_previous_master_keys({}) == ()
    with pytest.raises(MasterKeyMissing, match="key 2"):
        load_previous_master_keys({"RASTRO_MASTER_KEY_PREVIOUS": f"{text[0]},short"})


def test_production_refuses_to_run_without_a_master_key() -> None:
    with pytest.raises(MasterKeyMissing):
        load_master_key(development=False, env={})
    with pytest.raises(MasterKeyMissing):
        load_master_key(development=False, env={"RASTRO_MASTER_KEY": base64.b64encode(b"short").decode()})
    key = secrets.token_bytes(32)
    env = {"RASTRO_MASTER_KEY": base64.b64encode(key).decode()}
    assert load_master_key(development=False, env=env) == key


def test_development_generates_a_key_once_and_reads_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = load_master_key(development=True, env={})
    assert len(first) == 32
    assert load_master_key(development=True, env={}) == first
    assert (tmp_path / ".rastro" / "master.key").stat().st_mode & 0o077 == 0
