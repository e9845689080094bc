from __future__ import annotations

import pytest
from pydantic import ValidationError

from rastro_kit.http import ProblemError
from rastro_notification.api_checks import check_endpoint_url, check_event_types, check_secret
from rastro_notification.domain.signing import generate_secret
from rastro_notification.settings import NotificationSettings

pytestmark = pytest.mark.unit

PRODUCTION = NotificationSettings(RASTRO_MODE="production")
DEVELOPMENT = NotificationSettings(RASTRO_MODE="development")


def test_defaults() -> None:
    assert PRODUCTION.service_name == PRODUCTION.schema == "notification"
    assert PRODUCTION.schedule.delays_s == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert PRODUCTION.request_timeout_s == 15
    assert PRODUCTION.per_endpoint_concurrency == 4
    assert PRODUCTION.notify_channel == "notification_messages"


def test_private_urls_follow_the_mode_unless_set() -> None:
    assert PRODUCTION.private_urls_allowed is False and PRODUCTION.require_https
    assert DEVELOPMENT.private_urls_allowed is True and not DEVELOPMENT.require_https
    explicit = NotificationSettings(RASTRO_MODE="production", RASTRO_NOTIFICATION_ALLOW_PRIVATE_URLS=True)
    assert explicit.private_urls_allowed is True
    assert (
        NotificationSettings(RASTRO_MODE="development", allow_private_urls=False).private_urls_allowed
        is False
    )


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RASTRO_NOTIFICATION_RETRY_SCHEDULE", "0.2,0.2,0.2")
    monkeypatch.setenv("RASTRO_NOTIFICATION_PER_ENDPOINT_CONCURRENCY", "2")
    monkeypatch.setenv("RASTRO_MODE", "development")
    settings = NotificationSettings()
    assert settings.schedule.delays_s == (0.2, 0.2, 0.2)
    assert settings.per_endpoint_concurrency == 2
    assert settings.private_urls_allowed is True


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValidationError, match="comma-separated"):
        NotificationSettings(RASTRO_NOTIFICATION_RETRY_SCHEDULE="5,soon")
    with pytest.raises(ValidationError, match="claim_lease_s"):
        NotificationSettings(RASTRO_NOTIFICATION_REQUEST_TIMEOUT_S=30, RASTRO_NOTIFICATION_CLAIM_LEASE_S=20)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.0.0.5/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://hooks.internal/in", "internal name"),
        ("http://hooks.example.com/in", "https"),
    ],
)
def test_production_refuses_private_and_plain_http_endpoints(url: str, reason: str) -> None:
    with pytest.raises(ProblemError) as refused:
        check_endpoint_url(url, PRODUCTION)
    assert refused.value.status == 422
    assert reason in refused.value.detail
    assert refused.value.extensions["errors"][0]["field"] == "url"


def test_development_accepts_a_local_receiver() -> None:
    assert check_endpoint_url("http://127.0.0.1:8080/hook", DEVELOPMENT) == "http://127.0.0.1:8080/hook"
    assert check_endpoint_url("https://hooks.example.com/in", PRODUCTION) == "https://hooks.example.com/in"


def test_event_types_and_secrets_are_checked() -> None:
    assert check_event_types(["tracking.*", "eta.updated"]) == ["tracking.*", "eta.updated"]
    for bad in (["delivered"], ["tracking.deliverd"], []):
        with pytest.raises(ProblemError):
            check_event_types(bad)
    secret = generate_secret()
    assert check_secret(secret) == secret
    for bad_secret in ("whsec_c2hvcnQ=", "nope", "whsec_" + "A" * 200):
        with pytest.raises(ProblemError):
            check_secret(bad_secret)
