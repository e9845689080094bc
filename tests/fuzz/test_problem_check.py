"""The fuzzer's own check: what counts as a problem+json answer."""

from __future__ import annotations

import pytest

from tests.fuzz.problem_check import problem_violation

pytestmark = pytest.mark.unit
GOOD = b'{"type": "https://rastro.dev/problems/not-found", "title": "Not Found", "status": 404}'


def test_a_problem_document_passes_and_a_success_is_not_judged() -> None:
    assert problem_violation(404, "application/problem+json", GOOD) is None
    assert problem_violation(404, "application/problem+json; charset=utf-8", GOOD) is None
    assert problem_violation(200, "text/plain", b"ok") is None


@pytest.mark.parametrize(
    ("content_type", "body", "why"),
    [
        ("application/json", b'{"detail": "Not Found"}', "not application/problem+json"),
        (None, b"", "no content type"),
        ("application/problem+json", b"<html>", "not JSON"),
        ("application/problem+json", b"[]", "not an object"),
        ("application/problem+json", b'{"title": "Not Found", "status": 404}', "lacks type"),
        ("application/problem+json", GOOD.replace(b"404", b"400"), "says status 400"),
    ],
)
def test_what_is_not_a_problem(content_type: str | None, body: bytes, why: str) -> None:
    violation = problem_violation(404, content_type, body)
    assert violation is not None and why in violation
