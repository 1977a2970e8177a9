"""The demo's remote tickets: citizens who take a ticket on the portal and are told by e-mail.

When the demo starts, remote tickets are switched on for one demo service
(:data:`SERVICE`, its :class:`~hub.model.RemoteRules`, the holder must check in) and a
few citizens take one each through the portal's own path
(:meth:`~hub.service.QueueService.issue_remote`, as ``POST /remote`` does), then leave
their e-mail address for notices (:meth:`~hub.notify.Notices.subscribe`, as the
my-ticket page's form does). Later each one walks into the office and scans the
ticket's QR code at the demo kiosk (the demo writes it into the kiosk's simulated
scanner, a FIFO); one never comes, and the queue passes over the ticket until it
expires.

The e-mail goes to a local SMTP server on a free port of 127.0.0.1 (aiosmtpd), which
takes every message and writes it to the log instead of delivering it: each notice
reads ``demo: notice to <address>: <subject>``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any, Final

from aiosmtpd.controller import Controller

from common.mail_settings import MailSettings
from hub.broker import free_port
from hub.demo_bookings import FIFO_RETRY_S, scan_until
from hub.model import Change, RemoteRules, TicketState
from hub.notify import Notices
from hub.service import QueueError, QueueService
from sync_agent.protocol import remote_qr

log = logging.getLogger("poradovnik.demo")

SERVICE: Final = "waste"
"""The demo service that takes remote tickets."""

RULES: Final = RemoteRules(enabled=True, daily_quota=20, presence=True, max_passes=15)
"""Its rules: the holder must check in; 15 calls may pass over an absent one (the demo's
clerks press often), the next expires the ticket."""


@dataclass(frozen=True, slots=True)
class Citizen:
    """One citizen who takes a remote ticket: their address and when they walk in."""

    email: str
    lang: str
    arrives_s: float | None
    """Seconds after taking the ticket that they scan it at the kiosk; ``None``: never."""


CITIZENS: Final = (
    Citizen("lucia@example.org", "sk", 5.0),
    Citizen("olena@example.org", "uk", 15.0),
    Citizen("martin@example.org", "cs", None),
)
"""The demo's remote citizens; Martin never comes."""


class NoticeSink:
    """aiosmtpd's handler: each message the hub sends is logged, never delivered."""

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        """Log the notice's addressee and subject."""
        message = message_from_bytes(envelope.content, policy=policy.default)
        log.info("demo: notice to %s: %s", ", ".join(envelope.rcpt_tos), message["Subject"])
        return "250 OK"


class MailSink:
    """A local SMTP server on a free port that logs the notices (see :class:`NoticeSink`)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._controller = Controller(NoticeSink(), hostname="127.0.0.1", port=self.port)

    def start(self) -> MailSink:
        """Listen; returns once the server takes connections."""
        self._controller.start()
        log.info(
            "demo: e-mail goes to a local SMTP server at 127.0.0.1:%d, into this log", self.port
        )
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()

    def settings(self) -> MailSettings:
        """``[mail]`` of the demo's hub: this server, no TLS, no login."""
        return MailSettings(
            host="127.0.0.1", port=self.port, sender="poradovnik@demo.example", starttls=False
        )


class DemoRemote:
    """Takes the demo's remote tickets and sends their holders to the kiosk's scanner."""

    def __init__(self, queue: QueueService, notices: Notices, scanner: Path) -> None:
        """``scanner``: the demo kiosk's FIFO."""
        self.queue = queue
        self.notices = notices
        self.scanner = scanner
        self._tickets: dict[str, tuple[Citizen, str, str]] = {}
        """Ticket id → its citizen, number and check-in code."""
        self._checked_in: dict[str, threading.Event] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def take_tickets(self) -> None:
        """Switch remote tickets on for :data:`SERVICE`; each citizen takes one and subscribes."""
        service = self.queue.service(SERVICE)
        if service is None:
            log.warning("demo: no service %s for remote tickets", SERVICE)
            return
        self.queue.save_service(replace(service, remote=RULES))
        self.queue.subscribe(self._changed)
        for citizen in CITIZENS:
            try:
                ticket = self.queue.issue_remote(SERVICE, lang=citizen.lang).ticket
                self.notices.subscribe(ticket.id, "email", citizen.email, citizen.lang)
            except (QueueError, ValueError) as refused:
                log.warning("demo: %s took no remote ticket: %s", citizen.email, refused)
                continue
            assert ticket.remote_code is not None
            self._tickets[ticket.id] = (citizen, ticket.number, ticket.remote_code)
            self._checked_in[ticket.id] = threading.Event()
            log.info(
                "demo: %s took remote ticket %s on the portal (check-in code %s), notices "
                "by e-mail%s",
                citizen.email,
                ticket.number,
                ticket.remote_code,
                "" if citizen.arrives_s is not None else "; they will not come",
            )

    def start(self) -> None:
        """Send each citizen who comes to the kiosk, at their time."""
        for ticket_id, (citizen, _number, _code) in self._tickets.items():
            if citizen.arrives_s is None:
                continue
            thread = threading.Thread(
                target=self._come, args=(ticket_id,), name="demo-remote", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Send no more citizens."""
        self._stop.set()
        for event in self._checked_in.values():
            event.set()
        for thread in self._threads:
            thread.join(FIFO_RETRY_S * 5)

    def _changed(self, change: Change) -> None:
        """A listener of the queue (under its lock): narrate check-ins and expiries."""
        for ticket in change.tickets:
            known = self._tickets.get(ticket.id)
            if known is None:
                continue
            citizen, number, _code = known
            event = self._checked_in[ticket.id]
            if ticket.checked_in_at is not None and not event.is_set():
                log.info("demo: remote ticket %s checked in at the kiosk", number)
                event.set()
            elif ticket.state is TicketState.EXPIRED and not event.is_set():
                log.info("demo: remote ticket %s expired: %s never came", number, citizen.email)
                event.set()

    def _come(self, ticket_id: str) -> None:
        citizen, number, code = self._tickets[ticket_id]
        assert citizen.arrives_s is not None
        done = self._checked_in[ticket_id]
        if self._stop.wait(citizen.arrives_s) or done.is_set():
            return  # the demo stops, or the ticket expired before they came
        scan_until(
            self.scanner,
            remote_qr(code),
            done=done,
            stop=self._stop,
            who=f"{citizen.email} scans remote ticket {number}",
        )
