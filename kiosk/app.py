"""``poradovnik kiosk``: runs a ticket kiosk: its screen, its printer and offline issuing.

:class:`KioskApp` is the screen's loop: it turns taps (mouse clicks or touches,
as pygame events) into the kiosk's actions, runs each issue in a worker thread so
the screen stays alive, shows the outcome and returns to the start screen.
A citizen who taps twice gets one ticket: taps are ignored while a ticket is
being issued, and those made meanwhile are dropped. A booked appointment is
checked in from its code typed on the keypad screen or its QR code scanned (the
scanner's thread hands each scan over through :meth:`KioskApp.scanned`), in a
worker thread like an issue. "I need priority" leads to the reasons (each with its
pictogram), then to the services that allow priority tickets. The accessibility button
switches to the accessible mode (:mod:`kiosk.ui`, its large text paged where it does not
fit, each page spoken with its number): each screen is spoken when it appears,
a touch on a button (or a finger sliding onto it) says what it is, and a second tap on it
chooses it; the mode ends when the citizen leaves (the ticket taken, or nobody touching the
screen for a while). :func:`run` wires the parts from the settings; the systemd watchdog is
pinged while the screen loop and the MQTT network thread both make progress.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
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
from kiosk.ui import Button, Screen
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

__all__ = ["KioskApp", "build_kiosk", "run", "voices"]

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

ACCESSIBLE_IDLE_S = 60.0
"""The accessible mode ends, back at the start screen, when nobody touched it this long."""

SAID = 20
"""How many spoken texts :attr:`KioskApp.said` keeps."""

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
        speakers: Mapping[str, Speaker] | None = None,
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
        self.speakers = speakers or {}
        """The voice of each language for the accessible mode's guidance."""
        self.focused: tuple[str, str] | None = None
        """The button a finger explored in the accessible mode (kind, value): a tap on it
        chooses it."""
        self.said: deque[str] = deque(maxlen=SAID)
        """The last texts spoken as guidance (for tests and diagnosis)."""
        self._shown = 0
        """How many screens were shown: a new one is said when it appears."""
        self._announced: tuple[int, str] | None = None
        self._turned = False
        """Whether the screen to say is a page turned to (said alone, not with the next)."""
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
            elif event.type == pygame.FINGERMOTION:
                self._slide(event)
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
            self._leave()
        elif self.state in IDLE_STATES and self.clock() - self._touched_at > KEYPAD_IDLE_S:
            self._leave()  # the citizen walked away
        elif self.accessible and self.clock() - self._touched_at > ACCESSIBLE_IDLE_S:
            self._leave()
        if self.kiosk.changed.is_set() and self.state == "start":
            self.kiosk.changed.clear()
            self._dirty = True
        if self._dirty:
            self.draw()

    @property
    def accessible(self) -> bool:
        """Whether the screen is in its accessible mode."""
        return self.screen.accessible

    def _position(self, event: pygame.event.Event) -> tuple[float, float]:
        """Where on the screen a touch event is (SDL gives fractions of its size)."""
        width, height = self.screen.surface.get_size()
        return (event.x * width, event.y * height)

    def tap(self, event: pygame.event.Event) -> None:
        """Act on one tap: a mouse click (not one SDL made from a touch) or a touch.

        In the accessible mode a tap on a button says what it is; another tap on the same
        button chooses it.
        """
        if event.type == pygame.MOUSEBUTTONDOWN:
            if getattr(event, "touch", False) or event.button != 1:
                return
            pos = event.pos
        else:
            pos = self._position(event)
        if self.state == "busy" or self.clock() - self._shown_at < TAP_GUARD_S:
            return
        button = self.screen.hit(pos)
        if button is None:
            return
        self._touched_at = self.clock()
        if self.accessible and (button.kind, button.value) != self.focused:
            self._explore(button)
            return
        self.focused = None
        self._act(button)

    def _slide(self, event: pygame.event.Event) -> None:
        """A finger sliding over the screen in the accessible mode explores what it meets."""
        if not self.accessible or self.state == "busy":
            return
        button = self.screen.hit(self._position(event))
        if button is not None and (button.kind, button.value) != self.focused:
            self._touched_at = self.clock()
            self._explore(button)

    def _explore(self, button: Button) -> None:
        """Say what ``button`` is and ring it: the next tap on it chooses it."""
        self.focused = (button.kind, button.value)
        self._say(self.screen.label(button))
        self._dirty = True

    def _act(self, button: Button) -> None:
        """What a (chosen) button does."""
        if button.kind == "access":
            self._access(not self.accessible)
        elif button.kind == "page":
            self._turn(button.value)
        elif button.kind == "lang":
            self.lang = button.value
            self._dirty = True
        elif button.kind == "back":
            if self.outcome is not None and self.outcome.ticket is not None:
                self._leave()  # the ticket is taken: the citizen goes
            else:
                self._show("start")
        elif (button.kind, self.state) in (("service", "start"), ("walk_in", "outcome")):
            self._issue(button.value)
        elif (button.kind, self.state) == ("service", "priority_service"):
            self._issue(button.value, self.reason)
        elif (button.kind, self.state) == ("priority", "start") and self.priority:
            self._show("priority")
        elif (button.kind, self.state) == ("reason", "priority"):
            self._choose_reason(button.value)
        elif button.kind == "appointment" and self.state == "start":
            self.code = ""
            self._show("keypad")
        elif button.kind == "key" and self.state == "keypad":
            self._key(button.value)

    def _turn(self, way: str) -> None:
        """Show the accessible list's next or previous page (after the last, the first).

        The page is said as it appears; the button stays explored, so each further tap on
        it turns again.
        """
        step = 1 if way == "next" else -1
        self.screen.page = (self.screen.page + step) % self.screen.pages
        self._shown += 1
        self._turned = True
        self.focused = ("page", way)
        self._dirty = True

    def _choose_reason(self, reason: str) -> None:
        """A reason for priority was tapped: the services for its ticket come next."""
        if reason not in PRIORITY_REASONS:
            return
        self.reason = cast(PriorityReason, reason)  # checked just above
        self._show("priority_service")

    def _access(self, on: bool) -> None:
        """Switch the accessible mode on or off (the screen is drawn, and spoken, anew)."""
        if on == self.accessible:
            return
        self.screen.accessible = on
        self.screen.page = 0
        self.focused = None
        self._announced = None
        self._dirty = True
        if not on:
            self._stop_speech()

    def _leave(self) -> None:
        """The citizen has gone: back to the start screen, the accessible mode off."""
        self._access(False)
        self._show("start")

    def _key(self, key: str) -> None:
        """A key of the keypad: a digit, ``del`` (correct), ``ok`` or ``cancel``."""
        if key == "cancel":
            self._show("start")
        elif key == "ok":
            if len(self.code) in CHECKIN_CODE_LENGTHS:
                self._check_in(self.code)
        elif key == "del":
            self.code = self.code[:-1]
        elif key.isdigit() and len(self.code) < CODE_LENGTH:
            self.code += key
        if self.accessible and key not in ("cancel", "ok"):
            self._say(self.catalogs[self.lang].text("access.typed", code=" ".join(self.code)))
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
        self._shown_at = self._touched_at = self.clock()
        self._shown += 1
        self.screen.page = 0
        self.focused = None
        self._dirty = True
        pygame.event.clear(TAPS)  # taps made meanwhile are not for the new screen

    # -- drawing -------------------------------------------------------------------

    def draw(self) -> None:
        """Draw the current screen."""
        texts = self.catalogs[self.lang]
        self.screen.access_labels = (
            texts.text("access.button"),
            texts.text("access.explain"),
            texts.text("access.leave"),
        )
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
        if self.accessible:
            self._guide(texts)
        pygame.display.flip()
        self._dirty = False

    def _priority_services(self) -> list[QueueState]:
        """The offered services whose admin allows priority tickets."""
        return [state for state in self.kiosk.services() if state.priority_allowed]

    def _guide(self, texts: Catalog) -> None:
        """Ring the explored button; say the screen when it is a new one."""
        if self.focused is not None:
            self.screen.focus(*self.focused)
        shown = (self._shown, self.lang)
        if shown == self._announced:
            return
        first = self._announced is None
        self._announced = shown
        said = self.screen.announcement(whole=not self._turned)
        self._turned = False
        self._say(f"{texts.text('access.on')} {said}" if first else said)

    def _say(self, text: str) -> None:
        """Say ``text`` in the citizen's language (silent without its voice)."""
        self.said.append(text)
        speaker = self.speakers.get(self.lang)
        if speaker is not None:
            speaker.speak(text)

    def _stop_speech(self) -> None:
        for speaker in self.speakers.values():
            speaker.stop()

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


def build_kiosk(
    settings: Settings,
    catalogs: dict[str, Catalog],
    speakers: Mapping[str, Speaker] | None = None,
) -> Kiosk:
    """The kiosk's parts from the settings: link, printer, offline book, voice.

    ``speakers``: the voices made already (:func:`voices`), else made here.
    """
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
        speakers=(voices(settings) if speakers is None else speakers)
        if kiosk_settings.speech
        else {},
    )


def voices(settings: Settings) -> dict[str, Speaker]:
    """The kiosk's voices when it speaks ([kiosk] speech) or has the accessible mode."""
    kiosk = settings.kiosk
    if not (kiosk.speech or kiosk.accessibility):
        return {}
    return _speakers(settings.site.languages, kiosk.speech_device)


def _speakers(languages: tuple[str, ...], device: str | None = None) -> dict[str, Speaker]:
    """A speaker for each language espeak-ng can speak (its voice is the language's code).

    A language it cannot speak is logged and stays silent: the kiosk works without speech.
    """
    speakers: dict[str, Speaker] = {}
    for lang in languages:
        try:
            speakers[lang] = Speaker(lang, device=device)
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
    speakers = voices(settings)
    kiosk = build_kiosk(settings, catalogs, speakers)
    surface = open_screen(settings)
    try:
        screen = Screen(
            surface,
            font_dir=settings.kiosk.font_dir,
            office=settings.site.name,
            access=settings.kiosk.accessibility,
            reach_top=settings.kiosk.reach_top,
            screen_height_mm=settings.kiosk.screen_height_mm,
            viewing_distance_mm=settings.kiosk.viewing_distance_mm,
        )
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
            speakers=speakers,
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
