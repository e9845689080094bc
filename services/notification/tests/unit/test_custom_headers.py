from __future__ import annotations

import pytest

from rastro_notification.domain.custom_headers import InvalidHeaders, validate_headers

pytestmark = pytest.mark.unit


def test_names_are_lower_cased_and_values_kept() -> None:
    assert validate_headers({"X-Api-Key": "abc 123"}) == {"x-api-key": "abc 123"}


@pytest.mark.parametrize(
    "name",
    [
        "webhook-signature",
        "Webhook-Id",
        "content-type",
        "Content-Length",
        "host",
        "transfer-encoding",
        "user-agent",
        "cookie",
        "x-forwarded-for",
        "proxy-authorization",
    ],
)
def test_headers_we_set_or_that_frame_the_request_are_refused(name: str) -> None:
    with pytest.raises(InvalidHeaders, match="set by Rastro"):
        validate_headers({name: "x"})


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"bad name": "x"}, "not a valid header name"),
        ({"x-a": "line\r\nx-injected: 1"}, "visible ASCII"),
        ({"x-a": "é"}, "visible ASCII"),
        ({"X-A": "1", "x-a": "2"}, "given twice"),
        ({f"x-{i}": "v" for i in range(21)}, "at most 20"),
    ],
)
def test_malformed_headers_are_refused(headers: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidHeaders, match=fragment):
        validate_headers(headers)
