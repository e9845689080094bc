from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rastro_notification.domain.signing import (
    InvalidSecret,
    decode_secret,
    generate_secret,
    headers_for,
    sign,
)

pytestmark = pytest.mark.unit

BODY = b'{"type":"tracking.delivered","data":{"tracking_number":"AA123456785BR","city":"S\xc3\xa3o Paulo"}}'


def test_the_published_example_signature_is_reproduced() -> None:
    # The example in the Standard Webhooks specification.
    signature = sign(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_generated_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_headers_verify_with_the_official_library() -> None:
    secret = generate_secret()
    headers = headers_for("msg_1", int(time.time()), BODY, [secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert Webhook(secret).verify(BODY, headers)["data"]["tracking_number"] == "AA123456785BR"


def test_during_a_rotation_each_secret_alone_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    headers = headers_for("msg_2", int(time.time()), BODY, [old, new])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, headers)
    Webhook(new).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


def test_a_tampered_body_fails_verification() -> None:
    secret = generate_secret()
    headers = headers_for("msg_3", int(time.time()), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"delivered", b"returned"), headers)


def test_a_changed_message_id_fails_verification() -> None:
    secret = generate_secret()
    headers = headers_for("msg_4", int(time.time()), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_5"})


def test_a_stale_timestamp_fails_verification() -> None:
    secret = generate_secret()
    headers = headers_for("msg_6", int(time.time()) - 10 * 60, BODY, [secret])
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


@given(
    msg_id=st.text(alphabet=st.characters(codec="ascii", exclude_characters=" "), min_size=1, max_size=40),
    body=st.text(max_size=300).map(str.encode),
    key=st.binary(min_size=24, max_size=64),
)
def test_any_utf8_body_and_key_verifies(msg_id: str, body: bytes, key: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    Webhook(secret).verify(body, headers_for(msg_id, int(time.time()), body, [secret]), json_parse=False)


def test_unpadded_secrets_are_accepted() -> None:
    secret = generate_secret()
    assert decode_secret(secret.rstrip("=")) == decode_secret(secret)


@pytest.mark.parametrize("secret", ["", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64!"])
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        sign([secret], "msg", 1, b"{}")


def test_signing_needs_a_secret_and_a_list_of_them() -> None:
    with pytest.raises(InvalidSecret):
        sign([], "msg", 1, b"{}")
    with pytest.raises(TypeError):
        sign(generate_secret(), "msg", 1, b"{}")
