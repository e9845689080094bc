from __future__ import annotations

from datetime import date

import pytest

from rastro_notification.domain.event_filter import TRACKING_STATUSES
from rastro_notification.domain.milestones import (
    CUSTOMER_MILESTONES,
    dedupe_key,
    eta_change,
    milestone_for,
    pick_locale,
)
from rastro_notification.domain.recipients import (
    InvalidAddress,
    mask_address,
    normalize_email,
    normalize_phone,
    opt_out_hash,
)

pytestmark = pytest.mark.unit


def test_the_six_milestones_of_the_issue() -> None:
    assert set(CUSTOMER_MILESTONES) == {
        "shipped",
        "out_for_delivery",
        "failed_attempt",
        "delivered",
        "exception",
        "eta_changed",
    }
    made = {milestone_for(s) for s in TRACKING_STATUSES} - {None}
    assert made == set(CUSTOMER_MILESTONES) - {"eta_changed"}
    assert milestone_for("in_transit") == "shipped" and milestone_for("pending") is None


def test_one_key_per_milestone_and_per_new_eta_date() -> None:
    assert dedupe_key("AA1BR", "delivered") == "AA1BR/delivered"
    assert dedupe_key("AA1BR", "eta_changed", date(2026, 12, 1)) == "AA1BR/eta_changed:2026-12-01"
    assert not eta_change(None, date(2026, 12, 1))  # the first ETA is the baseline
    assert not eta_change(date(2026, 12, 1), date(2026, 12, 1))
    assert eta_change(date(2026, 12, 1), date(2026, 12, 3))


@pytest.mark.parametrize(
    ("candidates", "locale"),
    [
        (("en", "pt-BR"), "en"),
        (("en-US", None), "en"),
        (("pt", None), "pt-BR"),
        (("fr", "en"), "en"),
        ((None, None), "pt-BR"),
        (("EN",), "en"),
    ],
)
def test_the_locale_is_the_recipients_then_the_tenants(
    candidates: tuple[str | None, ...], locale: str
) -> None:
    assert pick_locale(*candidates) == locale


def test_addresses_are_normalized_and_checked() -> None:
    assert normalize_email("  Maria.Silva@Example.COM ") == "Maria.Silva@example.com"
    assert normalize_phone("+55 (11) 98765-4321") == "+5511987654321"
    for bad in ("maria", "maria@", "a@b", "<a@b.com>"):
        with pytest.raises(InvalidAddress):
            normalize_email(bad)
    with pytest.raises(InvalidAddress):
        normalize_phone("98765-4321")


def test_masked_and_hashed_forms_hide_the_address() -> None:
    assert mask_address("maria@example.com") == "m***@example.com"
    assert mask_address("+5511987654321") == "+55*******4321"
    digest = opt_out_hash("acme", "Maria@Example.com")
    assert digest == opt_out_hash("acme", "maria@example.com") != opt_out_hash("other", "maria@example.com")
    assert "maria" not in digest
