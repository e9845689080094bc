"""Showing stored bytes: JSON where they parse, text where they decode, else base64, never altered."""

from __future__ import annotations

import base64

import pytest

from rastro_dlq_replay.domain.display import Shown, show_bytes, show_headers, show_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b'{"a": [1, "x"]}', Shown({"a": [1, "x"]}, "json")),
        (b'"just a string"', Shown("just a string", "json")),
        (b"{not json", Shown("{not json", "utf-8")),
        (b"NaN", Shown("NaN", "utf-8")),  # not JSON: it could not be rendered back as JSON
        ("São Paulo".encode(), Shown("São Paulo", "utf-8")),
        (b"\xff\xfe{broken", Shown(base64.b64encode(b"\xff\xfe{broken").decode(), "base64")),
        (None, Shown(None, None)),
    ],
)
def test_values(raw: bytes | None, shown: Shown) -> None:
    assert show_bytes(raw) == shown


def test_deeply_nested_json_is_shown_as_text() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    assert show_bytes(raw).encoding == "utf-8"


def test_keys_are_text_or_base64_never_json() -> None:
    assert show_text(b'{"a":1}') == Shown('{"a":1}', "utf-8")
    assert show_text(b"\x80") == Shown("gA==", "base64")


def test_headers_keep_order_duplicates_and_nulls() -> None:
    assert show_headers((("a", b"1"), ("a", b"\xff"), ("n", None))) == [
        {"name": "a", "value": "1", "encoding": "utf-8"},
        {"name": "a", "value": "/w==", "encoding": "base64"},
        {"name": "n", "value": None, "encoding": None},
    ]
