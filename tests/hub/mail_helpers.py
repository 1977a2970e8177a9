"""A real SMTP server (aiosmtpd) on a free port of 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from common.settings import MailSettings
from hub.broker import free_port

WAIT_S = 10.0


class Inbox:
    """An aiosmtpd handler: each accepted message goes to ``received``.

    ``refuse`` holds SMTP replies (such as ``"451 try later"``) given, in turn, to the
    next messages instead of accepting them; each refusal goes to ``refused``.
    """

    def __init__(self) -> None:
        self.received: queue.Queue[EmailMessage] = queue.Queue()
        self.refused: queue.Queue[str] = queue.Queue()
        self.refuse: list[str] = []
        self.port = 0

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.refuse:
            reply = self.refuse.pop(0)
            self.refused.put(reply)
            return reply
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.received.put(message)
        return "250 OK"

    def next(self) -> EmailMessage:
        """The next message received (waits for it)."""
        return self.received.get(timeout=WAIT_S)

    def settings(self, **more: Any) -> MailSettings:
        """``[mail]`` settings that send here, in plain SMTP without login."""
        return MailSettings(
            host="127.0.0.1",
            port=self.port,
            sender="poradovnik@office.example",
            starttls=False,
            **more,
        )


@contextmanager
def smtp_server() -> Iterator[Inbox]:
    """A running SMTP server; its :class:`Inbox`."""
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
