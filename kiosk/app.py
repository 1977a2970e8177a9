"""``poradovnik kiosk``: runs a ticket kiosk: its screen, its printer and offline issuing.

:class:`KioskApp` is the screen's loop: it turns taps (mouse clicks or touches,
as pygame events) into the kiosk's actions, runs each issue in a worker thread so
the screen stays alive, shows the outcome and returns to the start screen.
A citizen who taps twice gets one ticket: taps are ignored while a ticket is
being issued, and those made meanwhile are dropped. A booked appointment is
checked in from its code typed on the keypad screen or its QR code scanned (the
scanner's thread hands each scan over through :meth:`KioskApp.scanned`), in a
worker thread like an issue. "I need priority" leads to the reasons (each with its
pictogram), then to the services that allow priority tickets. :func:`run` wires
the parts from the settings; the systemd watchdog is pinged while the screen loop
and the MQTT network thread both make progress.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import cast

from common.errors import PoradovnikError
from common.lifecycle import stop_on_signals
from common.liveness import Heartbeat, Watchdog
from common.sdl import pygame
from common.sdnotify import Notifier
from common.settings import Settings
from common.speech import Speaker
from kiosk.catalog import Catalog
from kiosk.dispenser import Kiosk, Outcome
from kiosk.fonts import font_path
from kiosk.offline import OfflineBook
from kiosk.pictograms import REASONS
from kiosk.printer import TicketPrinter, open_transport
from kiosk.scanner import MAX_SCAN_CHARS, open_scanner
from kiosk.ui import Screen
from sync_agent.link import DeviceLink
from sync_agent.pairing_screen import PairingTexts, show_pairing_code
from sync_agent.protocol import (
    CHECKIN_CODE_LENGTHS,
    PRIORITY_REASONS,
    PriorityReason,
    QueueState,
    parse_checkin_qr,
)
from sync_agent.provisioning import DevicePairing, PairingState

__all__ = ["KioskApp", "build_kiosk", "run"]

log = logging.getLogger(__name__)

TAP_GUARD_S = 0.6
"""After the screen changes, taps are ignored this long (a second tap of a double tap)."""

TAPS = (pygame.MOUSEBUTTONDOWN, pygame.FINGERDOWN)

CODE_LENGTH = max(CHECKIN_CODE_LENGTHS)
"""The most digits the keypad takes: a booking's code has eight, a remote ticket's six
(:data:`sync_agent.protocol.CHECKIN_CODE_PATTERN`)."""

KEYPAD_IDLE_S = 30.0
"""The keypad (and the priority's screens) go back to the start screen when nobody touched
it this long."""

IDLE_STATES = frozenset({"keypad", "priority", "priority_service"})
"""The screens a citizen may walk away from, which return to the start screen by themselves."""

SCAN_BACKLOG = 4
"""Scans waiting for the screen's loop beyond this are dropped (a scanner gone wild)."""


class KioskApp:
    """The kiosk's screen loop: taps in, screens out."""

    def __init__(
        self,
        kiosk: Kiosk,
        screen: Screen,
        catalogs: dict[str, Catalog],
        *,
        languages: tuple[str, ...],
        confirm_timeout_s: float = 12.0,
        simulate_citizens_s: float | None = None,
        appointments: bool = True,
        scanner: bool = False,
        priority: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kiosk = kiosk
        self.screen = screen
        self.catalogs = catalogs
        self.languages = languages
        self.lang = languages[0]
        self.confirm_timeout_s = confirm_timeout_s
        self.appointments = appointments
        """Whether bookings are checked in here (the button, the keypad, scans)."""
        self.scanner = scanner
        """Whether a QR scanner is attached (the start screen says to use it)."""
        self.priority = priority
        """Whether priority tickets are offered here (for the services that allow them)."""
        self.reason: PriorityReason | None = None
        """The reason for priority the citizen chose (on the priority's services screen)."""
        self.clock = clock
        self.state = "start"
        """``start``, ``keypad`` (a booking's code is being typed), ``priority`` (the reasons
        for priority), ``priority_service`` (the services for a priority ticket), ``busy`` (a
        ticket is being issued or a booking checked in) or ``outcome``."""
        self.outcome: Outcome | None = None
        self.issued = 0
        """How many taps reached the kiosk (for tests and the log)."""
        self.code = ""
        """The digits typed on the keypad so far."""
        self._busy_text = "busy.text"
        self._results: queue.Queue[Outcome] = queue.Queue()
        self._scans: queue.Queue[str] = queue.Queue(maxsize=SCAN_BACKLOG)
        self._touched_at = clock()
        self._shown_at = clock() - TAP_GUARD_S
        self._dirty = True
        self._citizens_s = simulate_citizens_s
        self._rng = random.Random()
        self._next_citizen = clock() + self._citizen_pause()

    # -- events --------------------------------------------------------------------

    def step(self, wait_s: float = 0.0) -> None:
        """Handle pending events, a finished issue, the confirmation's timeout; redraw.

        While a ticket is being issued, waits up to ``wait_s`` for it to finish.
        """
        self._simulated_citizen()
        for event in pygame.event.get():
            if event.type in TAPS:
                self.tap(event)
        self._take_scans()
        if self.state == "busy":
            try:
                outcome = (
                    self._results.get(timeout=wait_s) if wait_s else self._results.get_nowait()
                )
            except queue.Empty:
                pass
            else:
                self._show("outcome", outcome)
        elif self.state == "outcome" and self.clock() - self._shown_at > self.confirm_timeout_s:
            self._show("start")
        elif self.state in IDLE_STATES and self.clock() - self._touched_at > KEYPAD_IDLE_S:
            self._show("start")  # the citizen walked away
        if self.kiosk.changed.is_set() and self.state == "start":
            self.kiosk.changed.clear()
            self._dirty = True
        if self._dirty:
            self.draw()

    def tap(self, event: pygame.event.Event) -> None:
        """Act on one tap: a mouse click (not one SDL made from a touch) or a touch."""
        if event.type == pygame.MOUSEBUTTONDOWN:
            if getattr(event, "touch", False) or event.button != 1:
                return
            pos = event.pos
        else:
            width, height = self.screen.surface.get_size()
            pos = (event.x * width, event.y * height)
        if self.state == "busy" or self.clock() - self._shown_at < TAP_GUARD_S:
            return
        button = self.screen.hit(pos)
        if button is None:
            return
        if button.kind == "lang":
            self.lang = button.value
            self._dirty = True
        elif button.kind == "back":
            self._show("start")
        elif (button.kind, self.state) in (("service", "start"), ("walk_in", "outcome")):
            self._issue(button.value)
        elif (button.kind, self.state) == ("service", "priority_service"):
            self._issue(button.value, self.reason)
        elif (button.kind, self.state) == ("priority", "start") and self.priority:
            self._touched_at = self.clock()
            self._show("priority")
        elif (button.kind, self.state) == ("reason", "priority"):
            self._choose_reason(button.value)
        elif button.kind == "appointment" and self.state == "start":
            self.code = ""
            self._touched_at = self.clock()
            self._show("keypad")
        elif button.kind == "key" and self.state == "keypad":
            self._key(button.value)

    def _choose_reason(self, reason: str) -> None:
        """A reason for priority was tapped: the services for its ticket come next."""
        if reason not in PRIORITY_REASONS:
            return
        self.reason = cast(PriorityReason, reason)  # checked just above
        self._touched_at = self.clock()
        self._show("priority_service")

    def _key(self, key: str) -> None:
        """A key of the keypad: a digit, ``del`` (correct), ``ok`` or ``cancel``."""
        self._touched_at = self.clock()
        if key == "cancel":
            self._show("start")
        elif key == "ok":
            if len(self.code) in CHECKIN_CODE_LENGTHS:
                self._check_in(self.code)
        elif key == "del":
            self.code = self.code[:-1]
        elif key.isdigit() and len(self.code) < CODE_LENGTH:
            self.code += key
        self._dirty = True

    def scanned(self, text: str) -> None:
        """A QR code was scanned (any thread): it is checked in at the next :meth:`step`."""
        try:
            self._scans.put_nowait(text)
        except queue.Full:
            log.warning("dropped a scan: %d are waiting already", SCAN_BACKLOG)

    def _take_scans(self) -> None:
        while True:
            try:
                text = self._scans.get_nowait()
            except queue.Empty:
                return
            if not self.appointments or self.state == "busy":
                log.info(
                    "ignored a scan: %s", "no check-in here" if not self.appointments else "busy"
                )
                continue
            code = parse_checkin_qr(text[:MAX_SCAN_CHARS])
            if code is None:
                log.info("a scanned code is no booking: %r", text[:60])
                self._show("outcome", Outcome("", refused="not_a_booking", checkin=True))
            else:
                self._check_in(code)

    def _issue(self, service: str, priority: PriorityReason | None = None) -> None:
        self.issued += 1
        lang = self.lang

        def work() -> Outcome:
            return self.kiosk.issue(service, lang, priority)

        self._work(
            "busy.text", work, Outcome(service, refused="other"), f"issuing a ticket of {service}"
        )

    def _check_in(self, code: str) -> None:
        lang = self.lang

        def work() -> Outcome:
            return self.kiosk.check_in(code, lang)

        failed = Outcome("", refused="other", checkin=True)
        self._work("busy.checkin", work, failed, f"checking in booking {code}")

    def _work(self, busy: str, work: Callable[[], Outcome], failed: Outcome, what: str) -> None:
        """Show the busy screen (saying ``busy``) and run ``work`` in a worker thread."""
        self._busy_text = busy
        self._show("busy")
        self.draw()

        def run() -> None:
            try:
                outcome = work()
            except Exception:
                log.exception("%s failed", what)
                outcome = failed
            self._results.put(outcome)

        threading.Thread(target=run, name="kiosk-work", daemon=True).start()

    def _show(self, state: str, outcome: Outcome | None = None) -> None:
        self.state = state
        self.outcome = outcome
        self._shown_at = self.clock()
        self._dirty = True
        pygame.event.clear(TAPS)  # taps made meanwhile are not for the new screen

    # -- drawing -------------------------------------------------------------------

    def draw(self) -> None:
        """Draw the current screen."""
        texts = self.catalogs[self.lang]
        if self.state == "busy":
            self.screen.busy(texts, self._busy_text)
        elif self.state == "keypad":
            self.screen.keypad(texts, self.code, CHECKIN_CODE_LENGTHS)
        elif self.state == "priority":
            self.screen.priority_reasons(texts, REASONS)
        elif self.state == "priority_service":
            self.screen.priority_services(self._priority_services(), texts, can_issue=self._why_off)
        elif self.state == "outcome" and self.outcome is not None:
            service = self.outcome.service
            name = self.kiosk.service_name(service, self.lang)
            self.screen.outcome(self.outcome, texts, name, self.kiosk.queue_state(service))
        else:
            self.screen.start(
                self.kiosk.services(),
                texts,
                {lang: self.catalogs[lang].text("language.name") for lang in self.languages},
                can_issue=self._why_off,
                banner=self._banner(texts),
                offline=not self.kiosk.online,
                appointments=self.appointments,
                scanner=self.scanner,
                priority=self.priority and bool(self._priority_services()),
            )
        pygame.display.flip()
        self._dirty = False

    def _priority_services(self) -> list[QueueState]:
        """The offered services whose admin allows priority tickets."""
        return [state for state in self.kiosk.services() if state.priority_allowed]

    def _why_off(self, state: QueueState) -> str | None:
        kiosk = self.kiosk
        if not kiosk.printer_status.can_print and kiosk.stop_on_printer_fault:
            return "start.unavailable"
        if state.cut_off:
            return "start.cut_off"
        if not state.open:
            return "start.closed"
        if state.daily_limit is not None and state.issued_today >= state.daily_limit:
            return "start.limit"
        if not kiosk.online and not kiosk.can_issue_offline(state.service):
            return "start.unavailable"
        return None

    def _banner(self, texts: Catalog) -> str | None:
        if self.kiosk.link.problem is not None:
            return texts.text("banner.account")
        if self.kiosk.printer_status.can_print:
            return None
        return texts.text(
            "banner.printer_stop" if self.kiosk.stop_on_printer_fault else "banner.printer_show"
        )

    def _citizen_pause(self) -> float:
        if self._citizens_s is None:
            return math.inf
        return self._rng.expovariate(1 / self._citizens_s)

    def _simulated_citizen(self) -> None:
        """In demo mode, a simulated citizen taps a service as a finger would (an event)."""
        if self.clock() < self._next_citizen or self.state != "start":
            return
        self._next_citizen = self.clock() + self._citizen_pause()
        services = [b for b in self.screen.buttons if b.kind == "service"]
        if services:
            target = self._rng.choice(services).rect.center
            pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=target, button=1))

    # -- the loop --------------------------------------------------------------------

    def run(self, stop: threading.Event, notifier: Notifier, fps: int = 30) -> None:
        """Run the screen until ``stop`` is set or the window is closed.

        The systemd watchdog is pinged while this loop and the kiosk's MQTT network
        thread both make progress.
        """
        ticker = pygame.time.Clock()
        main = Heartbeat("kiosk's screen loop")
        with Watchdog(notifier, [main, self.kiosk.link.connection.heartbeat]) as watchdog:
            watchdog.ready("showing the start screen")
            while not stop.is_set():
                main.beat()
                if pygame.event.peek(pygame.QUIT):
                    break
                self.step()
                ticker.tick(fps)
        notifier.stopping()


def build_kiosk(settings: Settings, catalogs: dict[str, Catalog]) -> Kiosk:
    """The kiosk's parts from the settings: link, printer, offline book, voice."""
    kiosk_settings = settings.kiosk
    printer_settings = kiosk_settings.printer
    data = settings.data.dir
    printer = TicketPrinter(
        transport=open_transport(printer_settings),
        profile=printer_settings.profile,
        catalogs=catalogs,
        font=font_path(kiosk_settings.font_dir),
        office=settings.site.name,
        portal_url=kiosk_settings.portal_url,
        footer=kiosk_settings.footer,
        logo=printer_settings.logo,
        status_timeout_s=printer_settings.status_timeout_s,
    )
    link = DeviceLink(
        mqtt=settings.mqtt,
        site=settings.site.id,
        device_id=settings.device.id,
        role="kiosk",
        outbox_path=data / "kiosk-outbox.sqlite3",
    )
    return Kiosk(
        link=link,
        printer=printer,
        book=OfflineBook(data / "kiosk-blocks.sqlite3"),
        catalogs=catalogs,
        timezone=settings.site.tzinfo,
        services=kiosk_settings.services,
        hub_timeout_s=kiosk_settings.hub_timeout_s,
        block_size=kiosk_settings.block_size,
        stop_on_printer_fault=kiosk_settings.on_printer_fault == "stop",
        status_interval_s=printer_settings.status_interval_s,
        speakers=_speakers(settings.site.languages) if kiosk_settings.speech else {},
    )


def _speakers(languages: tuple[str, ...]) -> dict[str, Speaker]:
    """A speaker for each language espeak-ng can speak (its voice is the language's code).

    A language it cannot speak is logged and stays silent: the kiosk works without speech.
    """
    speakers: dict[str, Speaker] = {}
    for lang in languages:
        try:
            speakers[lang] = Speaker(lang)
        except PoradovnikError as exc:
            log.error("the kiosk will not speak %s ([kiosk] speech): %s", lang, exc)
    return speakers


def open_screen(settings: Settings) -> pygame.Surface:
    """Open the kiosk's window or full screen."""
    kiosk = settings.kiosk
    try:
        pygame.display.init()
        pygame.font.init()
        flags = pygame.FULLSCREEN if kiosk.fullscreen else 0
        surface = pygame.display.set_mode((kiosk.width, kiosk.height), flags)
    except pygame.error as exc:
        raise PoradovnikError(f"cannot open the kiosk's screen: {exc}") from None
    pygame.display.set_caption(f"Poradovník – {settings.site.name}")
    pygame.mouse.set_visible(not kiosk.fullscreen)
    return surface


def show_pairing(settings: Settings, pairing: DevicePairing, stop: threading.Event) -> None:
    """Show the pairing code on the kiosk's screen until the kiosk is paired."""
    texts = Catalog.load(settings.site.default_language)
    states = {state: texts.text(f"pairing.{state.value}") for state in PairingState}
    show_pairing_code(
        open_screen(settings),
        pairing,
        PairingTexts(texts.text("pairing.title"), states),
        stop,
        font_dir=settings.kiosk.font_dir,
    )


def run(settings: Settings) -> None:
    """Run the kiosk until SIGTERM, SIGINT or the window is closed."""
    catalogs = Catalog.load_all(settings.site.languages)
    kiosk = build_kiosk(settings, catalogs)
    surface = open_screen(settings)
    try:
        screen = Screen(surface, font_dir=settings.kiosk.font_dir, office=settings.site.name)
        appointments = settings.kiosk.appointments
        scanner = open_scanner(settings.kiosk, settings.data.dir) if appointments else None
        app = KioskApp(
            kiosk,
            screen,
            catalogs,
            languages=settings.site.languages,
            confirm_timeout_s=settings.kiosk.confirm_timeout_s,
            simulate_citizens_s=settings.kiosk.simulate_citizens_s,
            appointments=appointments,
            scanner=scanner is not None,
            priority=settings.kiosk.priority,
        )
        kiosk.start()
        if scanner is not None:
            scanner.start(app.scanned, kiosk.scanner_health)
        log.info(
            "kiosk %s of site %s started, printer: %s, scanner: %s",
            settings.device.id,
            settings.site.id,
            kiosk.printer.transport.description,
            scanner.description if scanner is not None else "none",
        )
        try:
            with stop_on_signals() as stop:
                app.run(stop, Notifier())
        finally:
            if scanner is not None:
                scanner.stop()
    finally:
        kiosk.stop()
        pygame.quit()
