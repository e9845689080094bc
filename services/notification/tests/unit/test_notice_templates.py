"""The shipped templates and the sandbox (no I/O besides reading the package's own files)."""

from __future__ import annotations

import pytest

from rastro_notification.adapters.template_renderer import (
    InvalidTemplate,
    check_template,
    default_template,
    render_notice,
)
from rastro_notification.domain.milestones import CUSTOMER_MILESTONES, LOCALES

pytestmark = pytest.mark.unit
CONTEXT = {
    "tracking_number": "AA123456785BR",
    "carrier": "correios",
    "occurred_at": "2026-11-23T17:05:00+00:00",
    "expected_date": "2026-12-01",
    "previous_expected_date": "2026-11-28",
    "recipient_name": "Maria",
}


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("milestone", [*CUSTOMER_MILESTONES, "endpoint_disabled"])
def test_every_milestone_has_a_default_in_every_locale(milestone: str, locale: str) -> None:
    assert default_template(milestone, locale) is not None
    rendered = render_notice(milestone, locale, CONTEXT, time_zone="America/Sao_Paulo")
    assert rendered["subject"] and rendered["body"] and rendered["short"]
    assert "\n" not in rendered["subject"]


def test_dates_and_times_follow_the_locale_and_the_tenant_zone() -> None:
    pt = render_notice("delivered", "pt-BR", CONTEXT, time_zone="America/Sao_Paulo")
    assert "23/11/2026 14:05" in pt["body"] and "AA123456785BR" in pt["subject"]
    en = render_notice("eta_changed", "en", CONTEXT, time_zone="UTC")
    assert "from 2026-11-28 to 2026-12-01" in en["body"]


def test_an_override_is_used_and_a_broken_one_falls_back() -> None:
    override = {"subject": "Chegou {{ tracking_number }}", "body": "Oi {{ recipient_name }}", "short": "ok"}
    assert (
        render_notice("delivered", "pt-BR", CONTEXT, time_zone="UTC", override=override)["body"] == "Oi Maria"
    )
    broken = {**override, "body": "{% if %}"}
    fallback = render_notice("delivered", "pt-BR", CONTEXT, time_zone="UTC", override=broken)
    assert fallback["subject"].startswith("Pedido entregue")


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% if %}",
        "{{ tracking_number.__init__.__globals__ }}",
    ],
)
def test_unsafe_or_malformed_templates_are_refused(body: str) -> None:
    with pytest.raises(InvalidTemplate):
        check_template({"subject": "s", "body": body, "short": "x"})
