"""The opaque list cursor round-trips and rejects what this service did not give out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rastro_dlq_replay.domain.query import Cursor, InvalidCursor, decode_cursor, encode_cursor

pytestmark = pytest.mark.unit


def test_cursor_round_trips_to_the_microsecond() -> None:
    cursor = Cursor(datetime(2026, 11, 23, 14, 5, 11, 120_345, tzinfo=UTC), "01JD5Z8Q3T6W0K2N9V7R4B1C8E")
    token = encode_cursor(cursor)
    assert token.isascii() and "=" not in token
    assert decode_cursor(token) == cursor


@pytest.mark.parametrize(
    "token", ["", "not-base64!", "bnVsbA", "eyJ0IjoxfQ", "eyJ0IjoiMjAyNi0wMS0wMSIsImlkIjoieCJ9"]
)
def test_foreign_cursors_are_refused(token: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(token)
