"""``poradovnik display``: runs a lobby display: its screen, its sound and its LED boards.

The wiring: a read-only :class:`~sync_agent.link.DeviceLink` hears
``calls``, the retained ``queue/<service>``, ``counter/<id>/state`` and
``counter/<id>/call`` (each counter's last call), and the hub's status. Its network
thread only checks each message and hands it to the main thread through a queue. The
main thread feeds the :class:`~lobby.content.Lobby`, draws what changed, and sleeps
until the next message or the next change the scene makes by itself (a blink, a
waiting call's turn, the clock). A call that becomes the
current one is announced (:class:`~display.announcer.Announcer`, its own
thread) and shown by the hall boards. A call is taken once, however often it comes
(live and retained, or again after a reconnect); one heard later than ``[display]
catch_up_s`` after it was made (the broker tells its age) joins the previous calls
silently; a counter's board shows its ticket
(:class:`~display.boards.driver.LedBoards`, its own thread). The boards'
and the sound's faults become the device's retained health.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.display_settings import parse_quiet_hours
from common.errors import PoradovnikError
from common.lifecycle import stop_on_signals
from common.liveness import Heartbeat, Watchdog
from common.sdl import pygame
from common.sdnotify import Notifier
from common.settings import Settings
from common.speech import Speaker
from display.announcer import (
    Announcer,
    AplayPlayer,
    NullPlayer,
    Player,
    PygamePlayer,
    WavPlayer,
)
from display.boards.bus import BoardBus, open_serial
from display.boards.driver import LedBoards
from display.boards.emulator import EmulatedBoards, SimulatedPort
from display.boards.protocols import Port, protocol
from display.screen import CallScreen, Fonts, counter_text, open_screen
from lobby.catalog import Catalog, catalog
from lobby.content import Lobby, Scene, ShownCall
from sync_agent.connection import Inbound
from sync_agent.link import DeviceLink
from sync_agent.pairing_screen import PairingTexts, show_pairing_code
from sync_agent.protocol import (
    ANY,
    CALL_LIFETIME_S,
    Call,
    CounterState,
    DeviceStatus,
    Message,
    PartHealth,
    ProtocolError,
    QueueState,
    decode,
)
from sync_agent.provisioning import DevicePairing, PairingState

__all__ = ["Display", "build", "run"]

log = logging.getLogger(__name__)

FrameHook = Callable[[Scene, list[pygame.Rect]], None]
"""Told of every frame drawn: the scene and the regions that changed (benchmarks)."""

_HOUSEKEEPING_S = 1.0
"""The longest the main loop sleeps: the clock, the window's events and its heartbeat."""

_REMEMBERED_CALLS = 512
"""How many calls the display remembers, to take each only once."""


@dataclass(frozen=True, slots=True)
class _Inbound:
    """A checked message from the hub, on its way to the main thread."""

    kind: str
    message: Message | None
    """``None`` for a cleared retained state (of ``ident``)."""
    ident: str = ""
    age_s: float = 0.0
    """A call's age when it arrived, in seconds."""


def call_age_s(call: Call, expiry_s: int | None) -> float:
    """How old ``call`` is, from the message expiry the broker left it.

    The hub publishes calls with an expiry of :data:`~sync_agent.protocol.CALL_LIFETIME_S`
    minus their age, and the broker counts it down, so no clock of this Pi is needed.
    Without an expiry (a hub of an earlier version), the display's clock has to do.
    """
    if expiry_s is not None:
        return float(max(0, CALL_LIFETIME_S - expiry_s))
    return max(0.0, (datetime.now(UTC) - call.called_at).total_seconds())


class Display:
    """A lobby display: the link, the screen and its content, the sound and the boards.

    Build it with :func:`build`; :meth:`run` serves until ``stop`` is set.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        link: DeviceLink,
        screen: CallScreen,
        announcer: Announcer | None,
        boards: LedBoards | None,
        on_frame: FrameHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        display = settings.display
        self.settings = settings
        self.link = link
        self.screen = screen
        self.announcer = announcer
        self.boards = boards
        self.on_frame = on_frame
        self.clock = clock
        self.lobby = Lobby(
            history=display.history,
            highlight_s=display.highlight_s,
            min_show_s=display.min_show_s,
            languages=settings.site.languages,
            language_cycle_s=display.language_cycle_s,
        )
        self._inbox: queue.Queue[_Inbound] = queue.Queue()
        self._heard: OrderedDict[tuple[str, str, datetime], None] = OrderedDict()
        """The calls taken so far (ticket, counter, time), oldest first."""
        self._health: dict[str, PartHealth] = {"screen": PartHealth(state="ok")}
        self._health_lock = threading.Lock()
        if announcer is not None:
            announcer.on_health = self._sound_health
            self._health["sound"] = PartHealth(state="ok")
            if announcer.speech_problem is not None:
                detail = announcer.speech_problem[:200]
                self._health["speech"] = PartHealth(state="error", detail=detail)
        if boards is not None:
            boards.on_health = self._board_health
            for address in boards.addresses:
                self._health[f"board-{address}"] = PartHealth(state="unknown")
        self._subscribe()

    # -- the link (network thread) -------------------------------------------------

    def _subscribe(self) -> None:
        topics = self.link.topics
        self.link.connection.subscribe(topics.calls(), self._hear_call)
        self.link.connection.subscribe(topics.counter_call(ANY, ANY), self._hear_call)
        self.link.subscribe(topics.queue(ANY), self._hear(QueueState, "queue"))
        self.link.subscribe(topics.counter_state(ANY), self._hear(CounterState, "counter"))
        self.link.subscribe(topics.hub_status(), self._hear(DeviceStatus, "hub"))
        self.link.on_connection_change(self._connection_changed)
        self.link.connection.on_connect(self._publish_health)

    def _hear(self, model: type[Message], kind: str) -> Callable[[str, bytes], None]:
        def deliver(topic: str, payload: bytes) -> None:
            ident = topic.rsplit("/", 2)[-2] if kind == "counter" else topic.rsplit("/", 1)[-1]
            if not payload:  # a retained state was cleared
                self._inbox.put(_Inbound(kind, None, ident))
                return
            try:
                message = decode(model, payload)
            except ProtocolError as exc:
                log.warning("ignored a message on %s: %s: %s", topic, exc.code, exc.message)
                return
            self._inbox.put(_Inbound(kind, message, ident))

        return deliver

    def _hear_call(self, message: Inbound) -> None:
        if not message.payload:  # a counter's last call cleared (a new day)
            return
        try:
            call = decode(Call, message.payload)
        except ProtocolError as exc:
            log.warning("ignored a call on %s: %s: %s", message.topic, exc.code, exc.message)
            return
        self._inbox.put(_Inbound("call", call, age_s=call_age_s(call, message.expiry_s)))

    def _connection_changed(self, up: bool) -> None:
        if not up:
            self._inbox.put(_Inbound("link", None))

    # -- health (any thread) -------------------------------------------------------

    def _set_health(self, part: str, health: PartHealth) -> None:
        with self._health_lock:
            if self._health.get(part) == health:
                return
            self._health[part] = health
        self._publish_health()

    def _publish_health(self) -> None:
        with self._health_lock:
            parts = dict(self._health)
        self.link.publish_health(parts)

    def _sound_health(self, ok: bool, detail: str | None) -> None:
        self._set_health("sound", PartHealth(state="ok" if ok else "error", detail=detail))

    def _board_health(self, address: int, problem: str | None) -> None:
        state = "ok" if problem is None else "offline"
        self._set_health(f"board-{address}", PartHealth(state=state, detail=problem))

    # -- the main thread -----------------------------------------------------------

    def _apply(self, item: _Inbound) -> None:
        message = item.message
        if isinstance(message, Call):
            self._take_call(message, item.age_s)
        elif isinstance(message, QueueState):
            self.lobby.queue(message)
        elif isinstance(message, CounterState):
            self.lobby.counter(message)
            self._counter_board(message.counter)
        elif isinstance(message, DeviceStatus):
            self.lobby.set_connected(message.state == "online")
        elif item.kind == "link":
            self.lobby.set_connected(False)
        elif item.kind == "queue":
            self.lobby.services.pop(item.ident, None)
        elif item.kind == "counter":
            self.lobby.counters.pop(item.ident, None)
            self._counter_board(item.ident)
        elif item.kind == "hub":
            self.lobby.set_connected(False)

    def _take_call(self, call: Call, age_s: float) -> None:
        """Show a call once: announced if it is fresh, else among the previous calls."""
        key = (call.ticket_id, call.counter, call.called_at)
        if key in self._heard:
            return
        self._heard[key] = None
        while len(self._heard) > _REMEMBERED_CALLS:
            self._heard.popitem(last=False)
        if age_s > self.settings.display.catch_up_s:
            log.info(
                "%s at %s was called %.0f s ago: listed, not announced",
                call.ticket,
                call.counter_name,
                age_s,
            )
            self.lobby.past(call)
            return
        self.lobby.call(call)
        self._call_to_counter_board(call)

    def _call_to_counter_board(self, call: Call) -> None:
        if self.boards is not None:
            for address in self.boards.for_counter(call.counter):
                self.boards.show(address, call.ticket, blink=True)

    def _counter_board(self, counter: str) -> None:
        if self.boards is not None:
            for address in self.boards.for_counter(counter):
                self.boards.show(address, self.lobby.board_text(counter))

    def _shown(self, call: ShownCall) -> None:
        """A call became the current one: announce it, and show it on the hall boards."""
        log.info(
            "calling %s to %s%s", call.ticket, call.counter_name, " again" if call.recall else ""
        )
        if self.announcer is not None:
            self.announcer.announce(call)
        if self.boards is not None:
            for address in self.boards.hall():
                self.boards.show(address, f"{call.ticket} {counter_text(call)}", blink=True)

    def _frame(self, now: float) -> None:
        """Draw what changed and show it."""
        scene = self.lobby.scene(now)
        wall = datetime.now(self.settings.site.tzinfo)
        changed = self.screen.draw(scene, wall, now)
        if changed:
            pygame.display.update(changed)
            if self.on_frame is not None:
                self.on_frame(scene, changed)

    def _window_events(self, stop: threading.Event) -> None:
        """Handle the window's events: closing it stops; uncovering it redraws."""
        for event in pygame.event.get():
            if event.type == pygame.QUIT or (
                event.type == pygame.KEYDOWN and event.key in (pygame.K_ESCAPE, pygame.K_q)
            ):
                stop.set()
            elif event.type in (pygame.WINDOWEXPOSED, pygame.VIDEOEXPOSE):
                self.screen.invalidate()

    def wake(self) -> None:
        """Wake the main loop (from any thread, or a signal handler)."""
        self._inbox.put(_Inbound("wake", None))

    def run(self, stop: threading.Event, notifier: Notifier | None = None) -> None:
        """Serve until ``stop`` is set (call :meth:`wake` after setting it from elsewhere).

        The systemd watchdog is pinged while this main loop and the MQTT network thread
        both make progress.
        """
        notifier = notifier or Notifier()
        main = Heartbeat("display's main loop")
        watchdog = Watchdog(notifier, [main, self.link.connection.heartbeat])
        self.link.start()
        if self.announcer is not None:
            self.announcer.start()
        if self.boards is not None:
            self.boards.start()
        self._publish_health()
        self.screen.invalidate()
        watchdog.ready("showing calls")
        try:
            while not stop.is_set():
                main.beat()
                now = self.clock()
                self._drain()
                turned = self.lobby.advance(now)
                self._frame(now)
                for call in turned:  # shown first, then spoken: the sound waits for no frame
                    self._shown(call)
                self._window_events(stop)
                self._sleep(now)
        finally:
            watchdog.stop()
            notifier.stopping()
            self.close()

    def _drain(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._apply(item)

    def _sleep(self, now: float) -> None:
        """Sleep until a message comes or the scene changes by itself."""
        wake = [now + _HOUSEKEEPING_S - (time.time() % 1.0)]  # the next whole second
        for when in (self.lobby.next_change(now), self.screen.next_ticker_frame(now)):
            if when is not None:
                wake.append(when)
        timeout = max(0.0, min(wake) - self.clock())
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return
        self._apply(item)

    def close(self) -> None:
        """Stop the sound, the boards and the link, and close the screen."""
        if self.announcer is not None:
            self.announcer.stop()
        if self.boards is not None:
            self.boards.stop()
            port: Any = self.boards.bus.port
            if hasattr(port, "close"):
                port.close()
        self.link.stop()
        pygame.display.quit()


def _player(settings: Settings) -> Player:
    display = settings.display
    if display.sound == "pygame":
        return PygamePlayer()
    if display.sound == "aplay":
        return AplayPlayer(display.alsa_device)
    if display.sound == "wav":
        return WavPlayer(display.sound_dir or settings.data.dir / "announcements")
    return NullPlayer()


def _announcer(settings: Settings) -> Announcer | None:
    display = settings.display
    if display.sound == "none" or not (display.chime or display.speech):
        return None
    catalogs = [catalog(lang) for lang in settings.site.languages]
    speakers: dict[str, Speaker] = {}
    problem: str | None = None
    if display.speech:
        for texts in catalogs:
            words = display.words_dir / texts.lang if display.words_dir is not None else None
            try:
                speakers[texts.lang] = Speaker(
                    texts.voice, rate=display.speech_rate, words_dir=words
                )
            except PoradovnikError as exc:
                log.error("the display will not speak %s ([display] speech): %s", texts.lang, exc)
                problem = str(exc)
    return Announcer(
        player=_player(settings),
        catalogs=catalogs,
        speakers=speakers,
        with_chime=display.chime,
        volume=display.volume / 100,
        quiet_hours=parse_quiet_hours(display.quiet_hours),
        quiet_volume=display.quiet_volume / 100,
        timezone=settings.site.tzinfo,
        speech_problem=problem,
    )


def _boards(settings: Settings) -> LedBoards | None:
    display = settings.display
    if display.boards_backend == "none":
        return None
    if not display.boards:
        log.warning(
            "boards_backend is %r but no [[display.boards]] are listed", display.boards_backend
        )
        return None
    frames = protocol(display.boards_protocol)
    port: Port
    if display.boards_backend == "simulated":
        port = SimulatedPort(EmulatedBoards(frames, [b.address for b in display.boards]))
    else:
        port = open_serial(
            display.boards_port,
            baudrate=display.boards_baudrate,
            timeout_s=display.boards_timeout_s,
            rs485=display.boards_rs485,
            framing=display.boards_framing,
        )
    return LedBoards(
        BoardBus(frames, port=port, retries=display.boards_retries),
        display.boards,
        blink_s=display.boards_blink_s,
        probe_s=display.boards_probe_s,
    )


def _open_screen(settings: Settings) -> pygame.Surface:
    display = settings.display
    return open_screen(
        driver=display.video_driver,
        width=display.width,
        height=display.height,
        fullscreen=display.fullscreen,
        title=f"Poradovník – {settings.site.name}",
    )


def show_pairing(settings: Settings, pairing: DevicePairing, stop: threading.Event) -> None:
    """Show the pairing code on the lobby screen until the display is paired."""
    texts = catalog(settings.site.default_language)
    states = {state: texts.label(f"pairing_{state.value}") for state in PairingState}
    show_pairing_code(
        _open_screen(settings),
        pairing,
        PairingTexts(texts.label("pairing_title"), states),
        stop,
        font_dir=settings.display.fonts_dir,
    )


def build(settings: Settings, *, on_frame: FrameHook | None = None) -> Display:
    """Open the screen, the sound and the boards as the settings say, and link them up.

    Raises :class:`PoradovnikError` when a part cannot be opened (each says why).
    """
    display = settings.display
    fonts = Fonts(display.fonts_dir)
    catalogs: dict[str, Catalog] = {lang: catalog(lang) for lang in settings.site.languages}
    announcer = _announcer(settings)
    boards = _boards(settings)
    surface = _open_screen(settings)
    screen = CallScreen(
        surface,
        fonts=fonts,
        catalogs=catalogs,
        office=settings.site.name,
        history=display.history,
        logo=display.logo,
        ticker=display.ticker,
    )
    link = DeviceLink(
        mqtt=settings.mqtt,
        site=settings.site.id,
        device_id=settings.device.id,
        role="display",
        outbox_path=None,
    )
    return Display(
        settings, link=link, screen=screen, announcer=announcer, boards=boards, on_frame=on_frame
    )


def run(settings: Settings, *, on_frame: FrameHook | None = None) -> None:
    """Run the role until it is stopped (SIGTERM, Ctrl+C, or its window closed)."""
    display = build(settings, on_frame=on_frame)
    with stop_on_signals(wake=display.wake) as stop:
        display.run(stop)
