from __future__ import annotations

import pytest

from rastro_kit import dead_letters as dl

pytestmark = pytest.mark.unit


def as_dict(headers: list[tuple[str, bytes | None]]) -> dict[str, str]:
    return {k: (v or b"").decode() for k, v in headers}


def test_first_failure_records_where_the_record_came_from() -> None:
    h = as_dict(
        dl.dead_letter_headers(
            [("ce_id", b"e1")],
            topic="rastro.tracking.raw.v1",
            partition=3,
            offset=42,
            group="normalization",
            reason="unmapped_carrier_code",
            message="no ZZZ-99",
        )
    )
    assert h["ce_id"] == "e1"
    assert h[dl.H_TOPIC] == "rastro.tracking.raw.v1" and h[dl.H_PARTITION] == "3" and h[dl.H_OFFSET] == "42"
    assert h[dl.H_ERROR_CLASS] == "unmapped_carrier_code" and h[dl.H_ATTEMPTS] == "1"
    assert h[dl.H_FIRST_FAILED] == h[dl.H_LAST_FAILED] or h[dl.H_FIRST_FAILED] < h[dl.H_LAST_FAILED]


def test_retries_keep_the_origin_and_first_failure_and_count_attempts() -> None:
    first = dl.retry_headers(
        [],
        topic="rastro.orders.v1",
        partition=1,
        offset=7,
        group="g",
        message="timeout",
        tier=1,
        not_before_ms=1,
    )
    second = dl.retry_headers(
        first,
        topic="rastro.x.retry.1",
        partition=0,
        offset=0,
        group="g",
        message="again",
        tier=2,
        not_before_ms=2,
    )
    dead = as_dict(
        dl.dead_letter_headers(
            second,
            topic="rastro.x.retry.2",
            partition=0,
            offset=9,
            group="g",
            reason="retries_exhausted",
            message="gave up",
        )
    )
    assert dead[dl.H_TOPIC] == "rastro.orders.v1" and dead[dl.H_PARTITION] == "1" and dead[dl.H_OFFSET] == "7"
    assert dead[dl.H_ATTEMPTS] == "3"
    assert dead[dl.H_FIRST_FAILED] == as_dict(first)[dl.H_FIRST_FAILED]
    assert dl.H_RETRY_TIER not in dead and dl.H_RETRY_NOT_BEFORE not in dead
    assert [
        k
        for k, _ in dl.dead_letter_headers(
            second, topic="t", partition=0, offset=0, group="g", reason="r", message="m"
        )
    ].count(dl.H_TOPIC) == 1


def test_long_messages_are_cut_and_null_headers_tolerated() -> None:
    h = dl.dead_letter_headers(
        [("x", None)], topic="t", partition=0, offset=0, group="g", reason="r", message="é" * 5000
    )
    assert len(dict(h)[dl.H_ERROR_MESSAGE] or b"") <= 2 * dl.MAX_MESSAGE
    assert dl.header_value([("x", None)], "x") is None
