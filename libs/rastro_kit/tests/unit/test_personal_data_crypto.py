"""The sealing of personal data, pure: AES-GCM round trip, tamper and AAD checks, the blind index, and
where the master key comes from."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from rastro_kit.personal_data import (
    DecryptionError,
    MasterKeyMissing,
    blind_index,
    is_sealed,
    load_master_key,
    open_with,
    parse_token,
    seal_with,
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
    email = blind_index("acme", "email", " Ana@Example.COM ", master)
    assert email == blind_index("acme", "email", "ana@example.com", master)
    assert email != blind_index("globex", "email", "ana@example.com", master)
    assert email != blind_index("acme", "email", "ana@example.com", secrets.token_bytes(32))
    assert blind_index("acme", "document", "123.456.789-09", master) == blind_index(
        "acme", "document", "12345678909", master
    )
    assert blind_index("acme", "phone", "+55 (11) 98765-4321", master) == blind_index(
        "acme", "phone", "+5511987654321", master
    )
    assert "ana" not in email and email.startswith("email:")


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
