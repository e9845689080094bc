"""Console sessions: signed cookies, CSRF tokens, and the server-side store that keeps the API key."""

from __future__ import annotations

import pytest

from rastro_cli.console.identity import Identity
from rastro_cli.console.sessions import CookieSigner, SessionStore

pytestmark = pytest.mark.unit

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000.0


def test_a_signed_value_comes_back_only_unchanged_with_our_secret_and_in_time() -> None:
    signer = CookieSigner(SECRET)
    token = signer.sign("sess1", NOW)
    assert signer.unsign(token, NOW + 10, max_age=60) == "sess1"
    value, issued, mac = token.split(".")
    assert signer.unsign(f"sess2.{issued}.{mac}", NOW, 60) is None  # value swapped
    assert signer.unsign(f"{value}.{int(issued) + 1000}.{mac}", NOW, 3600) is None  # age forged
    assert signer.unsign(f"{value}.{issued}.{mac[:-1]}x", NOW, 60) is None  # signature changed
    assert CookieSigner(b"another secret, 32 bytes long!!!").unsign(token, NOW, 60) is None
    assert signer.unsign(token, NOW + 61, max_age=60) is None  # expired
    assert signer.unsign(signer.sign("sess1", NOW + 3600), NOW, 60) is None  # from the future
    for garbage in ("", "a.b", "a.b.c.d", "sess1.notanumber.x"):
        assert signer.unsign(garbage, NOW, 60) is None


def test_the_signer_refuses_a_short_secret_and_a_value_it_cannot_frame() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        CookieSigner(b"short")
    with pytest.raises(ValueError, match=r"'\.'"):
        CookieSigner(SECRET).sign("a.b", NOW)


def test_a_csrf_token_belongs_to_one_session_and_one_purpose() -> None:
    signer = CookieSigner(SECRET)
    token = signer.token("csrf", "sess1")
    assert signer.check("csrf", "sess1", token)
    assert not signer.check("csrf", "sess2", token)
    assert not signer.check("login", "sess1", token)
    assert not signer.check("csrf", "sess1", "")
    assert not signer.check("csrf", "sess1", None)


def test_the_store_keeps_the_key_server_side_and_forgets_it_on_expiry_and_sign_out() -> None:
    store = SessionStore(ttl_s=60, max_sessions=10)
    session = store.create(Identity(operator=False, tenant="acme", key_hint="9xQa"), "rk_live_secret", NOW)
    assert store.get(session.id, NOW + 30) is session
    assert session.tenant == "acme" and session.key == "rk_live_secret"
    assert "rk_live_secret" not in repr(session) and session.id not in repr(session)
    assert store.get(session.id, NOW + 61) is None and len(store) == 0
    other = store.create(Identity(operator=False, tenant="acme"), "rk", NOW)
    store.drop(other.id)
    assert store.get(other.id, NOW) is None


def test_the_store_drops_the_oldest_sessions_beyond_its_bound_and_ids_are_unguessable() -> None:
    store = SessionStore(ttl_s=60, max_sessions=2)
    first, second, third = (store.create(Identity(False, "t"), f"k{i}", NOW) for i in range(3))
    assert store.get(first.id, NOW) is None
    assert store.get(second.id, NOW) is second and store.get(third.id, NOW) is third
    assert len({first.id, second.id, third.id}) == 3 and len(first.id) >= 40


def test_an_operator_starts_on_the_demo_tenant_when_there_is_one() -> None:
    store = SessionStore(ttl_s=60, max_sessions=10)
    assert store.create(Identity(True, None, ("acme", "demo")), "k", NOW).tenant == "demo"
    assert store.create(Identity(True, None, ("acme", "beta")), "k", NOW).tenant == "acme"
    assert store.create(Identity(True, None, ()), "k", NOW).tenant is None
