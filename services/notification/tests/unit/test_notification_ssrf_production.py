"""The issue's SSRF acceptance cases, in production mode: refused when the subscription is created
(the API check) and again at send time after DNS resolution (the sender), before any request is made."""

from __future__ import annotations

import httpx
import pytest

from rastro_kit.http import ProblemError
from rastro_notification.adapters.webhook_sender import WebhookSender
from rastro_notification.api_checks import check_endpoint_url
from rastro_notification.domain.delivery import Outcome
from rastro_notification.settings import NotificationSettings

pytestmark = pytest.mark.unit
PRODUCTION = NotificationSettings(RASTRO_MODE="production")
ADDRESSES = {
    "loopback.example.com": ["127.0.0.1"],
    "ten.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "mixed.example.com": ["93.184.216.34", "10.0.0.7"],  # one bad address is enough
}


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://10.255.255.254:8443/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/hook",
        "https://LOCALHOST./hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://2130706433/hook",
        "http://hooks.example.com/plain-http",
    ],
)
def test_the_api_refuses_them_in_production(url: str) -> None:
    assert not PRODUCTION.private_urls_allowed and PRODUCTION.require_https
    with pytest.raises(ProblemError) as refused:
        check_endpoint_url(url, PRODUCTION)
    assert refused.value.status == 422


@pytest.mark.parametrize("host", sorted(ADDRESSES))
async def test_names_resolving_to_them_are_refused_at_send_time(host: str) -> None:
    async def resolve(name: str, _port: int) -> list[str]:
        return ADDRESSES[name]

    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a request was made to {request.url}")

    check_endpoint_url(f"https://{host}/hook", PRODUCTION)  # the name alone is fine at registration
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as client:
        sender = WebhookSender(
            client,
            allow_private=PRODUCTION.private_urls_allowed,
            require_https=PRODUCTION.require_https,
            resolve=resolve,
        )
        result = await sender.send(f"https://{host}/hook", "msg_1", 1, b"{}", ["whsec_" + "A" * 32])
    assert result.outcome is Outcome.FAILED_PERMANENTLY and result.error == "endpoint_rejected"
