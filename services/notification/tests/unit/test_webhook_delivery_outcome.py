from __future__ import annotations

import pytest

from rastro_notification.domain.delivery import AttemptError, AttemptResult, Outcome, classify

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert classify(status, None) is Outcome.DELIVERED


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 501, 502, 503, 504, 599])
def test_throttling_conflicts_and_server_errors_are_retried(status: int) -> None:
    assert classify(status, None) is Outcome.RETRY


def test_410_means_the_endpoint_is_gone() -> None:
    assert classify(410, None) is Outcome.ENDPOINT_GONE


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 422, 301, 302, 307, 308, 100, 600, 999])
def test_other_client_errors_redirects_and_odd_codes_fail_permanently(status: int) -> None:
    assert classify(status, None) is Outcome.FAILED_PERMANENTLY


@pytest.mark.parametrize(
    "error", [AttemptError.TIMEOUT, AttemptError.CONNECTION, AttemptError.DNS, AttemptError.PROTOCOL]
)
def test_no_response_is_retried(error: AttemptError) -> None:
    assert classify(None, error) is Outcome.RETRY
    assert classify(None, str(error)) is Outcome.RETRY


def test_an_endpoint_refused_by_policy_fails_permanently() -> None:
    assert classify(None, "endpoint_rejected") is Outcome.FAILED_PERMANENTLY


def test_an_unknown_error_is_treated_as_transient() -> None:
    assert classify(None, "something new") is Outcome.RETRY


def test_a_status_decides_over_an_error() -> None:
    assert classify(200, "timeout") is Outcome.DELIVERED


def test_an_attempt_without_status_or_error_is_a_bug() -> None:
    with pytest.raises(ValueError):
        classify(None, None)


def test_an_attempt_result_knows_its_outcome() -> None:
    assert AttemptResult(status_code=503, latency_ms=12.0, retry_after_s=30).outcome is Outcome.RETRY
    assert AttemptResult(None, 0.0, error=AttemptError.TIMEOUT).outcome is Outcome.RETRY
