"""Carrier push authentication: HMAC of the raw body, or the shared-secret header."""

from __future__ import annotations

import pytest

from rastro_ingest.adapters.carriers.signature import sign_body, verify_push

pytestmark = pytest.mark.unit
SECRET = "csec_test-secret"
BODY = b'{"objetos": []}'


def test_a_good_signature_verifies() -> None:
    assert verify_push(SECRET, BODY, {"x-rastro-signature": sign_body(SECRET, BODY)})


@pytest.mark.parametrize(
    "signature",
    [sign_body("csec_other", BODY), sign_body(SECRET, BODY + b" "), "sha256=", "md5=abc", ""],
)
def test_a_bad_signature_fails(signature: str) -> None:
    assert not verify_push(SECRET, BODY, {"x-rastro-signature": signature})


def test_a_missing_signature_fails() -> None:
    assert not verify_push(SECRET, BODY, {})


def test_the_shared_secret_header_is_the_alternative() -> None:
    assert verify_push(SECRET, BODY, {"x-rastro-webhook-secret": SECRET})
    assert not verify_push(SECRET, BODY, {"x-rastro-webhook-secret": SECRET + "x"})


def test_a_bad_signature_is_not_rescued_by_a_good_shared_secret() -> None:
    headers = {"x-rastro-signature": "sha256=00", "x-rastro-webhook-secret": SECRET}
    assert not verify_push(SECRET, BODY, headers)
