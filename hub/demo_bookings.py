"""The demo's appointments: bookings phoned in for today, and citizens who come with them.

When the demo starts, booking is switched on for two demo services (their
:class:`~hub.appointments.BookingRules`), and a few appointments are booked through
:class:`~hub.appointments.AppointmentBook` as the admin books a caller's: the first
free slot, soon after the start, and more through the day. A simulated citizen comes
with each booking but one (a no-show): when the booking's check-in window opens
(``[queue] checkin_early_min`` before its slot, but not before the slot's day), they
scan its QR code at the demo kiosk, that is, the demo writes the code into the kiosk's
simulated scanner (a FIFO).
A scan the kiosk did not take (it was busy with another citizen) is made again.

Everything is narrated in the log: each booking with its time and code, each scan,
each check-in with its ticket; the lobby's narration marks an appointment's call.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from hub.appointments import AppointmentBook, BookingError, BookingRules, Contact, Slot
from hub.model import Appointment, Change
from hub.service import QueueService
from sync_agent.protocol import booking_qr

log = logging.getLogger("poradovnik.demo")

RULES: Final = (
    BookingRules("taxes", enabled=True, slot_min=10, seats=2, cancel_before_min=30),
    BookingRules("parking", enabled=True, slot_min=15, seats=1, cancel_before_min=30),
)
"""The demo services that take appointments, and how."""


@dataclass(frozen=True, slots=True)
class Plan:
    """One booking the demo makes: when (from the demo's start) and whether they come."""

    service: str
    after_min: int
    """The booking takes the first free slot starting this many minutes after the start."""
    name: str
    lang: str
    comes: bool = True


PLANS: Final = (
    Plan("taxes", 0, "Jana N.", "sk"),
    Plan("parking", 0, "Oksana M.", "uk"),
    Plan("taxes", 20, "Peter K.", "sk", comes=False),
    Plan("taxes", 90, "Tomáš V.", "cs"),
    Plan("parking", 240, "Emma H.", "en"),
)
"""The demo's bookings of the day; Peter K. never comes."""

SCAN_RETRY_S: Final = 15.0
"""How long a citizen waits for their scan to be taken before scanning again."""

SCANS: Final = 3
"""How many times a citizen scans before giving up."""

FIFO_RETRY_S: Final = 1.0
"""How often writing to the scanner FIFO is tried while the kiosk does not read it yet."""


class DemoBookings:
    """Books the demo's appointments and sends their citizens to the kiosk's scanner."""

    def __init__(
        self,
        queue: QueueService,
        book: AppointmentBook,
        scanner: Path,
        *,
        arrive_after_s: float,
    ) -> None:
        """``scanner``: the demo kiosk's FIFO; citizens come ``arrive_after_s`` apart at least."""
        self.queue = queue
        self.book = book
        self.scanner = scanner
        self.arrive_after_s = arrive_after_s
        self._checked_in: dict[str, threading.Event] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-bookings", daemon=True)
        self._coming: list[Appointment] = []

    def book_the_day(self) -> list[Appointment]:
        """Switch booking on for the demo services and book :data:`PLANS`."""
        for rules in RULES:
            self.book.save_rules(rules)
        start = self.queue.clock()
        booked = []
        for plan in PLANS:
            slot = self._slot(plan.service, start + timedelta(minutes=plan.after_min))
            if slot is None:
                log.warning("demo: no free slot of %s to book", plan.service)
                continue
            appointment = self.book.book(
                plan.service,
                slot.starts_at,
                Contact(plan.name, lang=plan.lang),
                client=None,
                admin=True,
            )
            booked.append(appointment)
            service = self.queue.service(plan.service)
            log.info(
                "demo: booked %s (%s) for %s code %s, for %s%s",
                service.prefix if service else plan.service,
                plan.service,
                self._local(appointment.starts_at),
                appointment.code,
                plan.name,
                "" if plan.comes else ", who will not come",
            )
            if plan.comes:
                self._coming.append(appointment)
                self._checked_in[appointment.id] = threading.Event()
        self._coming.sort(key=lambda a: a.starts_at)
        return booked

    def start(self) -> None:
        """Hear of check-ins and send the citizens to the kiosk, each at their time."""
        self.queue.subscribe(self._changed)
        self._thread.start()

    def stop(self) -> None:
        """Send no more citizens."""
        self._stop.set()
        for waiting in self._checked_in.values():
            waiting.set()  # wakes a citizen waiting for their check-in: they leave
        if self._thread.is_alive():
            self._thread.join(FIFO_RETRY_S * 5)

    def _slot(self, service: str, after: datetime) -> Slot | None:
        """The first slot of ``service`` with a free seat starting at ``after`` or later.

        Today's, or tomorrow's when today has none left (a demo started at midnight).
        """
        today = self.queue.today()
        for day in (today, today + timedelta(days=1)):
            try:
                slots = self.book.slots(service, day, admin=True)
            except BookingError as refused:
                log.warning("demo: cannot book %s: %s", service, refused.message)
                return None
            for slot in slots:
                if slot.starts_at >= after and slot.free > 0:
                    return slot
        return None

    def _local(self, at: datetime) -> str:
        return f"{at.astimezone(self.queue.timezone):%H:%M}"

    def _changed(self, change: Change) -> None:
        """A listener of the queue (under its lock): narrate the demo's check-ins."""
        ticket = change.subject
        if ticket is None or ticket.appointment is None or ticket.id not in change.new_ticket_ids:
            return
        event = self._checked_in.get(ticket.appointment)
        if event is None:
            return
        slot = self._local(ticket.slot_at) if ticket.slot_at is not None else "?"
        code = next((a.code for a in self._coming if a.id == ticket.appointment), "?")
        log.info("demo: booking %s checked in as %s (slot %s)", code, ticket.number, slot)
        event.set()

    def _run(self) -> None:
        for appointment in self._coming:
            opens = self.queue.engine.check_in_opens(appointment.starts_at)
            wait = (opens - self.queue.clock()).total_seconds()
            if self._stop.wait(max(wait, self.arrive_after_s)):
                return
            self._come(appointment)

    def _come(self, appointment: Appointment) -> None:
        """The citizen of ``appointment`` scans its QR code until the kiosk takes it."""
        scanned = scan_until(
            self.scanner,
            booking_qr(appointment.code),
            done=self._checked_in[appointment.id],
            stop=self._stop,
            who=f"{appointment.name} scans booking {appointment.code} "
            f"(slot {self._local(appointment.starts_at)})",
        )
        if not scanned and not self._stop.is_set():
            log.warning("demo: booking %s was not checked in", appointment.code)


def scan_until(
    scanner: Path, text: str, *, done: threading.Event, stop: threading.Event, who: str
) -> bool:
    """A citizen scans ``text`` at the kiosk (its FIFO ``scanner``) until ``done`` is set.

    Each scan is narrated as ``demo: <who> at the kiosk``; a scan the kiosk did not
    take (it was busy) is made again after :data:`SCAN_RETRY_S`, :data:`SCANS` times
    at most. Whether ``done`` was set (``False`` also when ``stop`` came first).
    """
    for _scan in range(SCANS):
        log.info("demo: %s at the kiosk", who)
        if not write_scan(scanner, text, stop):
            return False  # the demo is stopping
        if done.wait(SCAN_RETRY_S):
            return not stop.is_set()
        if stop.is_set():
            return False
    return False


def write_scan(scanner: Path, text: str, stop: threading.Event) -> bool:
    """Write one scan into the kiosk's FIFO, waiting while the kiosk does not read it.

    Returns ``False`` when ``stop`` came first.
    """
    while not stop.is_set():
        try:
            fd = os.open(scanner, os.O_WRONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            pass  # the kiosk has not made it yet
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: nobody reads it yet
                log.warning("demo: cannot scan at %s: %s", scanner, exc)
                return False
        else:
            try:
                os.write(fd, f"{text}\n".encode())
            finally:
                os.close(fd)
            return True
        stop.wait(FIFO_RETRY_S)
    return False
