"""Customer notifications end to end: events on the real broker, the recipient registered through the
API, e-mails received by a real SMTP server (aiosmtpd), messaging webhooks by a real receiver; plus
the carrier filter and the subscription API's new fields.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from standardwebhooks.webhooks import Webhook

from rastro_events import Status
from rastro_kit.testing import wait_until

if TYPE_CHECKING:
    from conftest import Mailbox, Receiver, Service

pytestmark = pytest.mark.integration


def email() -> str:
    return f"cliente.{secrets.token_hex(4)}@example.com"


async def put(service: Service, path: str, body: dict[str, Any], key: str | None = None) -> Any:
    response = await service.api.put(path, json=body, headers=service.auth(key))
    assert response.status_code == 200, response.text
    return response.json()


async def notices(service: Service, number: str, key: str | None = None, tenant: str = "") -> list[Any]:
    query = f"?tracking_number={number}" + (f"&tenant={tenant}" if tenant else "")
    return list((await service.get(f"/v1/notifications/messages{query}", key))["items"])


async def test_each_milestone_is_mailed_once_in_the_recipients_language(
    service: Service, mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    number, address = service.number(), email()
    await put(service, f"/v1/notifications/recipients/{number}", {"email": address, "name": "Maria"})
    for status, sub in [
        (Status.IN_TRANSIT, "in_transit.picked_up"),
        (Status.IN_TRANSIT, "in_transit.in_route"),  # already "shipped": no second message
        (Status.OUT_FOR_DELIVERY, "out_for_delivery"),
        (Status.FAILED_ATTEMPT, "failed_attempt.recipient_absent"),
        (Status.OUT_FOR_DELIVERY, "out_for_delivery"),  # again after the failed attempt: still one
        (Status.DELIVERED, "delivered.signed"),
        (Status.DELIVERED, "delivered.signed"),
    ]:
        await service.publish(service.tracking(number, status, sub))

    await wait_until(lambda: len(mailbox.to(address)) >= 4, message="four e-mails")

    async def all_sent() -> bool:
        items = await notices(service, number)
        return len(items) == 4 and all(n["status"] == "sent" for n in items)

    await wait_until(all_sent, message="four notices sent")
    mails = mailbox.to(address)
    subjects = sorted(m["Subject"] for m in mails)
    assert len(mails) == 4 and all(number in s for s in subjects)
    assert any(s.startswith("Pedido entregue") for s in subjects)  # pt-BR, the tenant's default
    assert "Olá, Maria!" in next(m for m in mails if "Saiu" in m["Subject"]).get_content()
    items = await notices(service, number)
    assert sorted(n["milestone"] for n in items) == [
        "delivered",
        "failed_attempt",
        "out_for_delivery",
        "shipped",
    ]
    assert all(n["address"].startswith("c***@") for n in items)  # masked in the log
    assert address not in capsys.readouterr().out  # and never in our logs


async def test_an_opted_out_address_gets_nothing(service: Service, mailbox: Mailbox) -> None:
    number, address = service.number(), email()
    await put(service, f"/v1/notifications/recipients/{number}", {"email": address})
    await put(
        service, "/v1/notifications/opt-outs", {"address": address.upper().replace("EXAMPLE", "example")}
    )
    await service.publish(service.tracking(number, Status.DELIVERED, "delivered.signed"))

    async def suppressed() -> bool:
        return [n["status"] for n in await notices(service, number)] == ["suppressed"]

    await wait_until(suppressed, message="suppressed notice")
    assert not mailbox.to(address)
    [notice] = await notices(service, number)
    assert notice["last_error"] == "opted_out"


async def test_an_eta_change_is_news_the_first_and_repeated_eta_are_not(
    service: Service, mailbox: Mailbox
) -> None:
    number, address = service.number(), email()
    await put(service, f"/v1/notifications/recipients/{number}", {"email": address, "locale": "en"})
    await service.publish(service.eta(number, date(2026, 12, 1)))  # the baseline
    await service.publish(service.eta(number, date(2026, 12, 4)))  # a change
    await service.publish(service.eta(number, date(2026, 12, 4)))  # the same again
    await service.publish(service.tracking(number, Status.DELIVERED, "delivered.signed"))  # a marker

    await wait_until(lambda: len(mailbox.to(address)) >= 2, message="eta and delivered e-mails")
    [eta_mail] = [m for m in mailbox.to(address) if "estimate" in m["Subject"]]
    assert "from 2026-12-01 to 2026-12-04" in eta_mail.get_content()  # en, as the recipient asked
    assert sorted(n["milestone"] for n in await notices(service, number)) == ["delivered", "eta_changed"]


async def test_quiet_hours_defer_and_a_template_override_is_used(service: Service, mailbox: Mailbox) -> None:
    tenant = f"q{secrets.token_hex(4)}"
    admin = service.admin_key
    local = datetime.now(UTC).astimezone(ZoneInfo("America/Sao_Paulo"))
    start, end = (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=1)).strftime("%H:%M"),
    )
    await put(
        service,
        f"/v1/notifications/settings?tenant={tenant}",
        {"time_zone": "America/Sao_Paulo", "quiet_hours": {"start": start, "end": end}},
        admin,
    )
    number, address = service.number(), email()
    await put(service, f"/v1/notifications/recipients/{number}?tenant={tenant}", {"email": address}, admin)
    override = {"subject": "Chegou! {{ tracking_number }}", "body": "Oi {{ recipient_name }}", "short": "ok"}
    preview = await put(
        service, f"/v1/notifications/templates/delivered/pt-BR?tenant={tenant}", override, admin
    )
    assert preview["preview"]["subject"] == "Chegou! AA123456785BR"
    await service.publish(service.tracking(number, Status.DELIVERED, "delivered.signed", tenant=tenant))

    async def deferred() -> list[Any]:
        return [
            n for n in await notices(service, number, admin, tenant) if n["deferred_reason"] == "quiet_hours"
        ]

    [notice] = await wait_until(deferred, message="deferred by quiet hours")
    assert notice["status"] == "pending" and not mailbox.to(address)
    send_after = datetime.fromisoformat(notice["send_after"]).astimezone(ZoneInfo("America/Sao_Paulo"))
    assert send_after.strftime("%H:%M") == end  # the end of the window, not dropped

    # The window ends (simulated: the tenant drops its quiet hours, the notice falls due): it goes out,
    # with the override.
    await put(
        service, f"/v1/notifications/settings?tenant={tenant}", {"time_zone": "America/Sao_Paulo"}, admin
    )
    await service.pool.execute(
        "UPDATE notification.notices SET send_after = now() WHERE id = $1", notice["id"]
    )
    await wait_until(lambda: mailbox.to(address), message="sent after the window")
    assert mailbox.to(address)[0]["Subject"] == f"Chegou! {number}"


async def test_the_messaging_channel_posts_a_signed_message(service: Service, receiver: Receiver) -> None:
    tenant = f"m{secrets.token_hex(4)}"
    provider = receiver.endpoint()
    saved = await put(
        service,
        f"/v1/notifications/settings?tenant={tenant}",
        {"messaging_url": provider.url, "tracking_url": "https://shop.example/t/{tracking_number}"},
        service.admin_key,
    )
    provider.secret = saved["messaging_secret"]
    number = service.number()
    await put(
        service,
        f"/v1/notifications/recipients/{number}?tenant={tenant}",
        {"phone": "+55 (11) 98765-4321"},
        service.admin_key,
    )
    await service.publish(
        service.tracking(number, Status.OUT_FOR_DELIVERY, "out_for_delivery", tenant=tenant)
    )
    await wait_until(lambda: provider.requests, message="provider called")
    [request] = provider.requests
    assert request.verified
    message = Webhook(saved["messaging_secret"]).verify(request.body, request.headers)
    assert message["to"] == "+5511987654321" and number in message["text"]
    assert message["milestone"] == "out_for_delivery" and message["tenant_id"] == tenant


async def test_the_carrier_filter_and_the_new_subscription_fields(
    service: Service, receiver: Receiver
) -> None:
    endpoint = receiver.endpoint()
    sub = await service.subscribe(
        endpoint, carriers=["Jadlog"], headers={"X-Api-Key": "abc"}, rate_limit_per_s=50
    )
    assert (sub["carriers"], sub["headers"], sub["rate_limit_per_s"]) == (
        ["jadlog"],
        {"x-api-key": "abc"},
        50,
    )
    assert sub["circuit"] == "closed"
    shipment = service.number()
    await service.publish(service.tracking(shipment, Status.IN_TRANSIT, "in_transit.in_route"))  # correios
    await service.publish(service.tracking(shipment, carrier="jadlog"))
    await wait_until(lambda: endpoint.requests, message="the jadlog event")
    bodies = [json.loads(r.body) for r in endpoint.requests]
    assert [b["data"]["carrier"] for b in bodies] == ["jadlog"]  # same shipment: the other would be first
    assert endpoint.requests[0].headers["x-api-key"] == "abc"

    bad = await service.api.post(
        "/v1/subscriptions",
        json={"url": endpoint.url, "headers": {"webhook-id": "forged"}},
        headers=service.auth(),
    )
    assert bad.status_code == 422 and bad.json()["type"].endswith("invalid-headers")
    rotated = await service.api.post(f"/v1/subscriptions/{sub['id']}/rotate-secret", headers=service.auth())
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"] != sub["secret"] and rotated.json()["previous_secret_expires_at"]
    patched = await service.api.patch(
        f"/v1/subscriptions/{sub['id']}",
        json={"carriers": None, "rate_limit_per_s": None},
        headers=service.auth(),
    )
    assert (patched.json()["carriers"], patched.json()["rate_limit_per_s"]) == (None, None)
