"""A real SMTP server for the tests (aiosmtpd on 127.0.0.1), and what it received."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from app.config import Settings

# --- a real SMTP server --------------------------------------------------------------


@dataclass
class Delivered:
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())  # type: ignore[attr-defined]

    def link(self, path_prefix: str) -> str:
        """The link to this site in the plain-text part, as a path (for the test client)."""
        match = re.search(
            r"http://testserver(" + re.escape(path_prefix) + r"\S+)", self.part("plain")
        )
        assert match, self.part("plain")
        return match.group(1)


class Inbox:
    """What an aiosmtpd server received, with a way to wait for it."""

    def __init__(self) -> None:
        self.delivered: list[Delivered] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._arrived:
            self.delivered.append(Delivered(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
            self._arrived.notify_all()
        return "250 OK"

    # Past a minute: a mail whose hand-over to the job queue was missed is picked up by
    # the outbox sweep, which runs every minute (app/jobs/runner.py); it must arrive.
    def wait_for(self, count: int = 1, timeout: float = 75) -> list[Delivered]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.delivered) >= count, timeout=timeout)
            assert len(self.delivered) >= count, f"{len(self.delivered)} of {count} mails arrived"
            return list(self.delivered)

    def stays_empty(self, seconds: float = 1.5) -> bool:
        time.sleep(seconds)
        return not self.delivered


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SmtpServer:
    port: int
    inbox: Inbox
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 and a free port, for the length of the block."""
    server = SmtpServer(port=free_port(), inbox=Inbox())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def smtp_settings(settings: Settings, port: int, **changes: Any) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_security": "none",
            "mail_from": "Brandkeep <no-reply@brandkeep.example>",
            "job_retry_seconds": 1,
            **changes,
        }
    )
