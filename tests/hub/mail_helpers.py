"""A real SMTP server (aiosmtpd) on a free port of 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import queue
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

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
        self.greetings = 0
        """EHLOs received: one per connection (plain SMTP, no STARTTLS)."""

    async def handle_EHLO(
        self, _server: Any, session: Any, _envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.greetings += 1
        session.host_name = hostname  # what aiosmtpd does itself without this hook
        return responses

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
        """``[mail]`` settings that send here (``more`` on top of plain SMTP, no login)."""
        options: dict[str, Any] = {"starttls": False, **more}
        return MailSettings(
            host="127.0.0.1", port=self.port, sender="poradovnik@office.example", **options
        )


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl; (certificate, key)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed: apt-get install openssl (./scripts/test does)"
    cert, key = directory / "smtp.crt", directory / "smtp.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def _login(expected: tuple[str, str]) -> Callable[..., AuthResult]:
    def authenticate(
        _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        given = (
            (data.login.decode(), data.password.decode())
            if isinstance(data, LoginPassword)
            else None
        )
        return AuthResult(success=given == expected, handled=False)

    return authenticate


@contextmanager
def smtp_server(
    *,
    certificate: tuple[Path, Path] | None = None,
    implicit_tls: bool = False,
    login: tuple[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Inbox]:
    """A running SMTP server (on ``port``, or a free one); its :class:`Inbox`.

    With a ``certificate`` (and key) it speaks STARTTLS and requires it, or TLS from
    the first byte with ``implicit_tls``; with ``login`` it requires that user and
    password, over TLS only.
    """
    inbox = Inbox()
    inbox.port = port or free_port()
    options: dict[str, Any] = {}
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        if implicit_tls:
            options["ssl_context"] = context
        else:
            options.update(tls_context=context, require_starttls=True)
    if login is not None:
        # aiosmtpd counts STARTTLS only as TLS: with TLS from the first byte it is TLS anyway.
        options.update(
            authenticator=_login(login), auth_required=True, auth_require_tls=not implicit_tls
        )
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port, **options)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
