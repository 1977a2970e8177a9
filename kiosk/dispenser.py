"""What a kiosk does when a citizen taps, without its screen: ask, fall back, print, tell.

:class:`Kiosk` ties the hub link, the printer and the offline book together:

* it follows the hub's retained ``queue/<service>`` states (the buttons) and the
  hub's own status;
* :meth:`Kiosk.issue` gets a number from the hub within ``hub_timeout_s``, or
  else from the kiosk's reserved blocks (the ticket goes to the hub later through
  the durable outbox), prints the ticket and says what happened;
* it keeps its blocks topped up and the printer's health published, each in a
  thread of its own.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from common.i18n import service_name
from common.speech import Speaker
from kiosk.catalog import Catalog, spoken_number
from kiosk.offline import OfflineBook
from kiosk.printer import PrintedTicket, PrinterFault, PrinterStatus, TicketPrinter
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

__all__ = ["Kiosk", "Outcome"]

log = logging.getLogger(__name__)

FALL_BACK_CODES = frozenset({"internal", "unavailable"})
"""Hub answers after which the kiosk issues from its own blocks, as if it were silent."""

BLOCKS_REQUEST = "blocks"
"""The offline book's name for the pending block request."""

BLOCK_RETRY = timedelta(minutes=1)
"""How long the kiosk waits before asking again for a service's block after the hub said
it holds enough of them (``too_many_blocks``): by then its offline tickets have usually
reached the hub, which frees a block."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came of a tap: a ticket (printed or not), or why there is none."""

    service: str
    ticket: PrintedTicket | None = None
    refused: str | None = None
    """Why no ticket: a code with a text ``refused.<code>`` in the catalogs."""
    printed: bool = False
    printer: PrinterStatus | None = None
    """The printer's condition after the tap."""
    walk_in: str | None = None
    """A service the citizen may take a walk-in ticket of instead (a late appointment)."""
    checkin: bool = False
    """The outcome of checking in a booking, not of a service's button."""


class Kiosk:
    """The kiosk's behaviour: the hub's services, issuing, printing, offline numbers."""

    def __init__(
        self,
        *,
        link: DeviceLink,
        printer: TicketPrinter,
        book: OfflineBook,
        catalogs: dict[str, Catalog],
        timezone: ZoneInfo,
        services: tuple[str, ...] = (),
        hub_timeout_s: float = 1.5,
        block_size: int = 20,
        stop_on_printer_fault: bool = False,
        status_interval_s: float = 10.0,
        speakers: Mapping[str, Speaker] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.link = link
        self.printer = printer
        self.book = book
        self.catalogs = catalogs
        self.timezone = timezone
        self.only = services
        self.hub_timeout_s = hub_timeout_s
        self.block_size = block_size
        self.stop_on_printer_fault = stop_on_printer_fault
        self.status_interval_s = status_interval_s
        self.speakers = speakers or {}
        """Who says the confirmation, by language (none: the kiosk is silent)."""
        self.clock = clock
        self.topics = link.topics
        self.printer_status = PrinterStatus("unknown", "not checked yet")
        self.hub_online = False
        self.changed = threading.Event()
        """Set whenever what the start screen shows may have changed."""
        self._queues: dict[str, p.QueueState] = {}
        self._offline_since: dict[str, int] = {}
        self._lock = threading.Lock()
        self._published: str | None = None
        self._health: dict[str, p.PartHealth] = {}
        """The device's hardware health by part (printer, scanner), published whole."""
        self._stopping = threading.Event()
        self._wake_blocks = threading.Event()
        self._refreshing = threading.Lock()
        self._held_back: dict[str, datetime] = {}
        """Services the hub gives no more blocks to now, and when to ask again."""
        self._threads: list[threading.Thread] = []
        link.subscribe(self.topics.queue(p.ANY), self._on_queue)
        link.subscribe(self.topics.hub_status(), self._on_hub_status)
        link.on_connection_change(self._on_connection)
        # The link's problem (the broker refusing its account) goes on the screen.
        link.connection.on_refused(lambda _action, _topic, _reason: self.changed.set())

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Connect to the hub and start the printer and block keepers."""
        self.link.start()
        for name, target in (("printer", self._watch_printer), ("blocks", self._keep_blocks)):
            thread = threading.Thread(target=target, name=f"kiosk-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads, the link and the printer's connection."""
        self._stopping.set()
        self._wake_blocks.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.link.stop()
        self.printer.close()
        for speaker in self.speakers.values():
            speaker.stop()

    # -- what the screen shows -----------------------------------------------------

    def services(self) -> list[p.QueueState]:
        """The services to offer, in button order (the settings' or by ticket letter)."""
        with self._lock:
            queues = dict(self._queues)
        if self.only:
            return [queues[code] for code in self.only if code in queues]
        return sorted(queues.values(), key=lambda q: (q.prefix, q.service))

    def queue_state(self, service: str) -> p.QueueState | None:
        """The last queue state the hub published for ``service``, if any."""
        with self._lock:
            return self._queues.get(service)

    @property
    def online(self) -> bool:
        """Whether the hub can be asked right now."""
        return self.link.connected.is_set() and self.hub_online

    def can_issue_offline(self, service: str) -> bool:
        """Whether a reserved number of ``service`` is left for today."""
        return self.book.remaining(service, self._today()) > 0

    # -- a tap ---------------------------------------------------------------------

    def issue(self, service: str, lang: str, priority: p.PriorityReason | None = None) -> Outcome:
        """Issue a ticket for ``service`` in ``lang``, print it, and say what happened.

        ``priority`` is the reason the citizen chose for a priority ticket, if any.

        Blocks for at most the hub timeout plus the printer's status and write
        timeouts: call it from a worker thread, not the screen's loop.
        """
        status = self.check_printer()
        if not status.can_print and self.stop_on_printer_fault:
            return Outcome(service, refused="printer", printer=status)
        request = p.IssueRequest(
            msg_id=uuid.uuid4().hex,
            service=service,
            lang=lang,
            priority=priority,
            sent_at=self.clock(),
        )
        reply = self.link.request(
            self.topics.kiosk_issue(self.link.device_id), request, self.hub_timeout_s
        )
        if isinstance(reply, p.ErrorReply) and reply.error.code not in FALL_BACK_CODES:
            code = reply.error.code
            known = self.catalogs[lang].has(f"refused.{code}")
            return Outcome(service, refused=code if known else "other", printer=status)
        if isinstance(reply, p.TicketReply):
            ticket = self._ticket(reply, lang, priority)
        else:
            if reply is not None:
                log.warning("the hub failed to issue (%s); issuing offline", reply)
            offline = self._issue_offline(service, lang, priority)
            if isinstance(offline, str):
                return Outcome(service, refused=offline, printer=status)
            ticket = offline
        return self._hand_out(service, ticket, status)

    def check_in(self, code: str, lang: str) -> Outcome:
        """Check in the booking ``code`` (eight digits) in ``lang``: its ticket, or why not.

        An appointment is checked in by the hub only: when it does not answer within
        the hub timeout the outcome is ``checkin_offline`` (the citizen is told to take
        a walk-in ticket or ask at a counter). A late citizen's outcome offers a walk-in
        ticket of the booked service (``walk_in``) when the hub names it and it can be
        issued. Blocks like :meth:`issue`: call it from a worker thread.
        """
        status = self.check_printer()
        if not status.can_print and self.stop_on_printer_fault:
            return Outcome("", refused="printer", printer=status, checkin=True)
        request = p.CheckInRequest(
            msg_id=uuid.uuid4().hex, code=code, lang=lang, sent_at=self.clock()
        )
        topic = self.topics.kiosk_checkin(self.link.device_id)
        reply = self.link.request(topic, request, self.hub_timeout_s)
        if isinstance(reply, p.TicketReply):
            return self._hand_out(reply.service, self._ticket(reply, lang), status, checkin=True)
        if not isinstance(reply, p.ErrorReply) or reply.error.code in FALL_BACK_CODES:
            why = self.link.problem or (str(reply) if reply else "the hub is silent")
            log.warning("booking %s cannot be checked in now: %s", code, why)
            return Outcome("", refused="checkin_offline", printer=status, checkin=True)
        error = reply.error
        known = self.catalogs[lang].has(f"refused.{error.code}")
        service = error.service or ""
        log.info("booking %s not checked in: %s (%s)", code, error.code, error.message)
        walk_in = service if error.code == "too_late" and self._walk_in_open(service) else None
        return Outcome(
            service,
            refused=error.code if known else "other",
            printer=status,
            walk_in=walk_in,
            checkin=True,
        )

    def _walk_in_open(self, service: str) -> bool:
        """Whether a walk-in ticket of ``service`` can be asked for now (it is offered here)."""
        offered = {state.service: state for state in self.services()}
        state = offered.get(service)
        if state is None or not state.open:
            return False
        return state.daily_limit is None or state.issued_today < state.daily_limit

    def _ticket(
        self, reply: p.TicketReply, lang: str, priority: p.PriorityReason | None = None
    ) -> PrintedTicket:
        """What a ticket the hub issued says, in ``lang``."""
        at = reply.appointment_at
        return PrintedTicket(
            ticket_id=reply.ticket_id,
            number=reply.number,
            service_name=self.service_name(reply.service, lang),
            issued_at=reply.issued_at.astimezone(self.timezone),
            people_ahead=reply.people_ahead,
            estimated_wait_s=reply.estimated_wait_s,
            lang=lang,
            appointment_at=at.astimezone(self.timezone) if at is not None else None,
            priority=priority is not None,
        )

    def _hand_out(
        self, service: str, ticket: PrintedTicket, status: PrinterStatus, *, checkin: bool = False
    ) -> Outcome:
        """Print ``ticket`` if the printer can, say it, and tell what came of it."""
        printed = False
        if status.can_print:
            try:
                self.printer.print(ticket)
                printed = True
            except PrinterFault as fault:
                log.error("ticket %s was not printed: %s", ticket.number, fault)
        after = self.check_printer()
        printed = printed and after.can_print
        self._speak(ticket)
        return Outcome(service, ticket=ticket, printed=printed, printer=after, checkin=checkin)

    def _issue_offline(
        self, service: str, lang: str, priority: p.PriorityReason | None
    ) -> PrintedTicket | str:
        """A ticket from the kiosk's own block, queued for the hub; or why there is none."""
        with self._lock:
            state = self._queues.get(service)
        if state is not None and not state.open:
            return "cut_off" if state.cut_off else "service_closed"
        limit = state.daily_limit if state is not None else None
        if state is not None and limit is not None and state.issued_today >= limit:
            return "daily_limit"
        now = self.clock()
        taken = self.book.take(service, self._today())
        if taken is None:
            why = self.link.problem or "the hub is silent"
            log.error("%s, and no reserved number of %s is left", why, service)
            return "unavailable"
        ticket_id = uuid.uuid4().hex
        self.link.send(
            self.topics.kiosk_offline(self.link.device_id),
            p.OfflineTicket(
                msg_id=ticket_id,
                ticket_id=ticket_id,
                service=service,
                business_day=taken.business_day,
                seq=taken.seq,
                number=taken.number,
                issued_at=now,
                priority=priority,
                lang=lang,
            ),
        )
        with self._lock:
            ahead = self._offline_since.get(service, 0)
            self._offline_since[service] = ahead + 1
        log.info("issued %s offline (the hub did not answer)", taken.number)
        self._wake_blocks.set()
        return PrintedTicket(
            ticket_id=ticket_id,
            number=taken.number,
            service_name=self.service_name(service, lang),
            issued_at=now.astimezone(self.timezone),
            people_ahead=(state.waiting if state else 0) + ahead,
            estimated_wait_s=state.estimated_wait_s if state else None,
            lang=lang,
            offline=True,
            priority=priority is not None,
        )

    def _speak(self, ticket: PrintedTicket) -> None:
        speaker = self.speakers.get(ticket.lang)
        if speaker is None:
            return
        text = self.catalogs[ticket.lang].text(
            "speech.confirm",
            number=spoken_number(ticket.number),
            service=ticket.service_name,
            ahead=ticket.people_ahead,
        )
        speaker.speak(text)

    def service_name(self, service: str, lang: str) -> str:
        """The name of ``service`` in ``lang``, as the hub published it."""
        with self._lock:
            state = self._queues.get(service)
        if state is None:
            return service
        return service_name(state.names, lang, service)

    def _today(self) -> date:
        return self.clock().astimezone(self.timezone).date()

    # -- the printer's health ------------------------------------------------------

    def check_printer(self) -> PrinterStatus:
        """Ask the printer how it is and publish it as the device's health if it changed."""
        status = self.printer.check()
        self.printer_status = status
        if status.state != self._published:
            log.info("printer: %s (%s)", status.state, status.detail)
            self._publish_part("printer", p.PartHealth(state=status.state, detail=status.detail))
            self._published = status.state
            self.changed.set()
        return status

    def scanner_health(self, state: p.PartState, detail: str) -> None:
        """The QR scanner's condition changed: publish it as the health part ``scanner``."""
        self._publish_part("scanner", p.PartHealth(state=state, detail=detail[:200]))

    def _publish_part(self, name: str, part: p.PartHealth) -> None:
        with self._lock:
            self._health[name] = part
            parts = dict(self._health)
        self.link.publish_health(parts)

    def _watch_printer(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check_printer()
            except Exception:
                log.exception("checking the printer failed")
            self._stopping.wait(self.status_interval_s)

    # -- the offline blocks --------------------------------------------------------

    def refresh_blocks(self) -> bool:
        """Ask the hub for a block of each service running low; whether it answered."""
        with self._refreshing:
            return self._refresh_blocks()

    def _refresh_blocks(self) -> bool:
        today = self._today()
        self.book.forget_before(today)
        wanted = self.only or tuple(q.service for q in self.services())
        now = self.clock()
        low = [
            s
            for s in wanted
            if self.book.remaining(s, today) <= self.block_size // 2
            and self._held_back.get(s, now) <= now
        ]
        if not low:
            return True
        msg_id = self.book.pending_request(BLOCKS_REQUEST)
        request = p.BlockRequest(msg_id=msg_id, services=low, size=self.block_size)
        reply = self.link.request(self.topics.kiosk_blocks(self.link.device_id), request, 5.0)
        if reply is None:
            return False
        if isinstance(reply, p.BlockReply):
            self.book.add(reply.blocks)
            for service, why in reply.refused.items():
                if why.code == "too_many_blocks":
                    # Not a fault: the kiosk issues from the blocks it has, asks later.
                    self._held_back[service] = now + BLOCK_RETRY
                    log.info(
                        "no new block of %s yet (%s); %d reserved numbers are left",
                        service,
                        why.message,
                        self.book.remaining(service, today),
                    )
                else:
                    log.warning("no block of %s: %s", service, why.message)
        else:
            log.error("the hub refused the kiosk's blocks: %s", reply)
        self.book.answered(BLOCKS_REQUEST)
        self.changed.set()
        return True

    def _keep_blocks(self) -> None:
        while not self._stopping.is_set():
            if self.link.connected.is_set():
                try:
                    self.refresh_blocks()
                except Exception:
                    log.exception("refreshing the number blocks failed")
            self._wake_blocks.wait(60.0)
            self._wake_blocks.clear()

    # -- link callbacks (network thread) -------------------------------------------

    def _on_queue(self, topic: str, payload: bytes) -> None:
        if not payload:
            return
        try:
            state = p.decode(p.QueueState, payload)
        except p.ProtocolError as exc:
            log.warning("ignored a bad queue state on %s: %s", topic, exc.message)
            return
        with self._lock:
            self._queues[state.service] = state
            self._offline_since.pop(state.service, None)
        self._wake_blocks.set()
        self.changed.set()

    def _on_hub_status(self, _topic: str, payload: bytes) -> None:
        try:
            status = p.decode(p.DeviceStatus, payload)
        except p.ProtocolError as exc:
            log.warning("ignored a bad hub status: %s", exc.message)
            return
        self.hub_online = status.state == "online"
        if self.hub_online:
            self._wake_blocks.set()
        self.changed.set()

    def _on_connection(self, up: bool) -> None:
        if not up:
            self.hub_online = False
        self.changed.set()
