"""Channels that carry a rendered notice to a person: e-mail over SMTP, and a webhook to a messaging
provider (an SMS / WhatsApp gateway of the tenant's choice).

A channel's ``send`` returns when the message was accepted, or raises ``ChannelError`` whose
``transient`` says whether trying again later may help (a refused connection, a 4xx SMTP reply, a 5xx
from the provider) or not (a 5xx SMTP reply such as an unknown mailbox, a 4xx from the provider).
``ChannelNotConfigured`` means the channel cannot be used at all (no SMTP server, no provider URL).

Nothing here logs the address or the text: the caller logs the notice id.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

import aiosmtplib

from rastro_notification.adapters.notice_store import NoticeClaim
from rastro_notification.adapters.template_renderer import RenderedNotice
from rastro_notification.adapters.webhook_sender import WebhookSender
from rastro_notification.domain.delivery import Outcome
from rastro_notification.settings import NotificationSettings

__all__ = ["Channel", "ChannelError", "ChannelNotConfigured", "EmailChannel", "MessagingChannel"]


class ChannelError(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class ChannelNotConfigured(ChannelError):
    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class Channel(Protocol):
    name: str

    async def send(self, notice: NoticeClaim, rendered: RenderedNotice) -> None: ...


class EmailChannel:
    name = "email"

    def __init__(self, settings: NotificationSettings) -> None:
        self._settings = settings

    def message(self, notice: NoticeClaim, rendered: RenderedNotice) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.email_from
        message["To"] = notice.address
        message["Subject"] = rendered["subject"]
        message["Message-ID"] = make_msgid(idstring=notice.id)
        message["X-Rastro-Notice"] = notice.id
        message.set_content(rendered["body"] + "\n")
        return message

    async def send(self, notice: NoticeClaim, rendered: RenderedNotice) -> None:
        s = self._settings
        if not s.smtp_host:
            raise ChannelNotConfigured("e-mail is not configured (RASTRO_NOTIFICATION_SMTP_HOST)")
        try:
            await aiosmtplib.send(
                self.message(notice, rendered),
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_security == "tls",
                start_tls=True if s.smtp_security == "starttls" else False,
                timeout=s.request_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise ChannelError(
                f"recipient refused ({codes})", transient=all(400 <= c < 500 for c in codes)
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ChannelError(f"SMTP {exc.code}", transient=exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ChannelError(f"{type(exc).__name__}", transient=True) from None


class MessagingChannel:
    """POSTs ``{"to", "text", "subject", "tenant_id", "tracking_number", "milestone", "notice_id"}`` to the
    tenant's ``messaging_url``, signed like our webhooks (Standard Webhooks, ``webhook-id`` = notice id)
    with the tenant's ``messaging_secret``, under the same endpoint policy (no private addresses in
    production)."""

    name = "messaging"

    def __init__(self, sender: WebhookSender) -> None:
        self._sender = sender

    async def send(self, notice: NoticeClaim, rendered: RenderedNotice) -> None:
        if not notice.messaging_url or not notice.messaging_secret:
            raise ChannelNotConfigured("no messaging provider configured for the tenant")
        body = json.dumps(
            {
                "to": notice.address,
                "text": rendered["short"],
                "subject": rendered["subject"],
                "tenant_id": notice.tenant_id,
                "tracking_number": notice.tracking_number,
                "milestone": notice.milestone,
                "notice_id": notice.id,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        now = int(datetime.now(UTC).timestamp())
        result = await self._sender.send(
            notice.messaging_url, notice.id, now, body, [notice.messaging_secret]
        )
        if result.outcome is Outcome.DELIVERED:
            return
        # The status or error kind only: a provider's reply may echo the recipient's number.
        what = f"HTTP {result.status_code}" if result.status_code is not None else str(result.error)
        raise ChannelError(f"messaging provider: {what}", transient=result.outcome is Outcome.RETRY)
