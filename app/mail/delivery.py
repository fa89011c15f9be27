"""Handing a rendered mail to the SMTP server, or to the development outbox."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from sqlmodel import Session

from app.config import Settings
from app.jobs.service import PermanentJobError
from app.mail import repository

log = logging.getLogger("brandkeep.mail")

SMTP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    text: str
    html: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> OutgoingMail:
        return cls(
            to=str(payload["to"]),
            subject=str(payload["subject"]),
            text=str(payload["text"]),
            html=str(payload["html"]),
        )


def deliver(session: Session, settings: Settings, mail: OutgoingMail) -> None:
    if settings.smtp_host:
        send_smtp(settings, build_message(settings, mail))
    elif settings.is_development:
        repository.store_dev_mail(
            session, to=mail.to, subject=mail.subject, text=mail.text, html=mail.html
        )
        log.info(
            "development mail to %s: %r (shown on /dev/outbox)\n%s",
            mail.to,
            mail.subject,
            mail.text,
        )
    else:
        raise PermanentJobError(
            "no SMTP server is configured (BRANDKEEP_SMTP_HOST): mail cannot be sent"
        )


def build_message(settings: Settings, mail: OutgoingMail) -> EmailMessage:
    """A multipart/alternative message: the plain text first, the HTML as the richer part."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def send_smtp(settings: Settings, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.smtp_security == "tls":
        client = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS, context=context
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
    with client:
        if settings.smtp_security == "starttls":
            client.starttls(context=context)
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password)
        try:
            client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            # The server refused the address itself: sending again will not change that.
            raise PermanentJobError(f"the SMTP server refused the recipient: {exc}") from exc
