"""The watchdog means alive: each role pings systemd only while its loops all progress.

Every role is run against a real ``NOTIFY_SOCKET`` (a datagram socket the test binds)
and a real broker. Each watched thread is hung in turn (blocked on an event, where the
role would block on a stuck database, a stuck callback or a stuck outbox write): the
pings stop and the status names the hung loop; released, the pings come back.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pygame
import pytest
from counter_helpers import panel_settings
from display_helpers import display_settings
from gpiozero.pins.mock import MockFactory
from kiosk_helpers import REPLIES, open_kiosk
from office_helpers import OfficeBroker, RunningHub

from common.liveness import BEAT_S, Heartbeat, Watchdog
from common.sdnotify import Notifier
from counter_terminal.app import CounterTerminal
from counter_terminal.app import serve as serve_counter
from display.app import build as build_display
from hub.app import serve as serve_hub
from hub.broker import free_port
from kiosk.loopback import LoopbackPrinter
from sync_agent.backoff import Backoff
from sync_agent.connection import MqttConnection
from sync_agent.link import DeviceLink

WATCHDOG_S = 4.0
"""The test units' ``WatchdogSec``: a loop may be silent 2 s, checked every second."""

WAIT_S = 30.0
"""An upper bound for anything awaited, never a pause."""

pytestmark = pytest.mark.slow


class Systemd:
    """The test's stand-in for systemd: the datagrams the role sends to NOTIFY_SOCKET."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seen: list[str] = []

    def receive(self, timeout: float) -> str | None:
        """The next message, or ``None`` if none comes within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            message = self.sock.recv(4096).decode()
        except (TimeoutError, BlockingIOError):  # timeout 0: nothing waiting
            return None
        self.seen.append(message)
        return message

    def until(self, wanted: Callable[[str], bool], what: str) -> str:
        """Receive until a message is ``wanted``; fail naming ``what`` if none comes."""
        while True:
            message = self.receive(WAIT_S)
            assert message is not None, f"no {what} within {WAIT_S} s; got {self.seen[-10:]}"
            if wanted(message):
                return message

    def pinged(self) -> None:
        """A watchdog ping comes."""
        self.until(lambda m: "WATCHDOG=1" in m.splitlines(), "watchdog ping")

    def stalled(self, loop: str) -> None:
        """The status names ``loop`` as not progressing, and then no ping comes."""
        self.until(lambda m: "STATUS=not alive" in m and loop in m, f"stall of the {loop}")
        # Two and a half checks, nothing at all: a ping would have come by now.
        while (message := self.receive(WATCHDOG_S / 4 * 2.5)) is not None:
            assert "WATCHDOG=1" not in message, f"pinged while the {loop} hangs"

    def recovered(self) -> None:
        """Pings come again."""
        self.pinged()


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Systemd]:
    """A NOTIFY_SOCKET with a 4 s watchdog in the environment the roles read."""
    path = tmp_path / "notify"
    if len(os.fsencode(path)) >= 100:  # pragma: no cover - sun_path holds 108 bytes
        pytest.skip("temporary directory path too long for an AF_UNIX socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", str(int(WATCHDOG_S * 1_000_000)))
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        yield Systemd(sock)


class Hang:
    """Blocks whoever calls :meth:`point` while :meth:`holding` is in force."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()

    def point(self, *_args: Any) -> None:
        """Where the hung thread stops (called from it)."""
        if self.armed.is_set() and not self.release.is_set():
            self.entered.set()
            self.release.wait(WAIT_S * 2)

    @contextmanager
    def holding(self, kick: Callable[[], None] = lambda: None) -> Iterator[None]:
        """Hang the thread (``kick`` makes it reach the point again) until the block ends."""
        self.armed.set()
        try:
            for _ in range(int(WAIT_S / 0.5)):
                kick()
                if self.entered.wait(0.5):
                    break
            assert self.entered.is_set(), "the thread never reached the point where it hangs"
            yield
        finally:
            self.release.set()


@contextmanager
def hung_network_thread(connection: MqttConnection, hub: RunningHub) -> Iterator[None]:
    """Hang ``connection``'s network thread in a subscription callback, as a stuck
    callback would; the hub publishes what triggers it."""
    publisher = hub.link.connection
    # Under queue/#, which every role may read.
    topic = f"{hub.link.topics.base}/queue/liveness/{uuid.uuid4().hex}"
    hang = Hang()
    connection.subscribe(topic, lambda _message: hang.point())
    # Published again until it arrives: the subscription is made in the background.
    with hang.holding(lambda: publisher.publish(topic, b"hang")):
        yield


@contextmanager
def running(target: Callable[[threading.Event], None], name: str) -> Iterator[threading.Event]:
    """Run a role's main loop in a thread until the block ends; its stop event."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=WAIT_S)
        assert not thread.is_alive(), f"{name} did not stop"


class Longest(random.Random):
    """Jitter that always draws the longest delay."""

    def uniform(self, a: float, b: float) -> float:
        return b


# -- the watchdog itself ------------------------------------------------------------


def test_pings_only_while_every_heartbeat_is_fresh(systemd: Systemd) -> None:
    now = [100.0]
    main = Heartbeat("main loop", clock=lambda: now[0])
    network = Heartbeat("MQTT network thread", clock=lambda: now[0])
    watchdog = Watchdog(Notifier(), [main, network])
    assert watchdog.max_silence_s == WATCHDOG_S / 2
    assert watchdog.check()
    assert systemd.receive(0) == "WATCHDOG=1"
    now[0] += 1.5
    main.beat()
    assert watchdog.check()  # the network thread was silent 1.5 s: still within 2 s
    assert systemd.receive(0) == "WATCHDOG=1"
    now[0] += 1.0
    main.beat()
    assert not watchdog.check()
    assert systemd.receive(0) == "STATUS=not alive: no progress in the MQTT network thread"
    assert not watchdog.check()
    assert systemd.receive(0) is None  # said once; no ping
    network.beat()
    assert watchdog.check()
    assert systemd.receive(0) == "WATCHDOG=1"


def test_a_loop_of_another_process_counts_from_the_silence_it_reports(
    systemd: Systemd,
) -> None:
    now = [100.0]
    child = Heartbeat("city consumer process", clock=lambda: now[0])
    watchdog = Watchdog(Notifier(), [child])
    child.beat(ago=WATCHDOG_S / 2 - 0.5)  # its loops went quiet a while ago
    assert watchdog.check()
    assert systemd.receive(0) == "WATCHDOG=1"
    now[0] += 1.0
    child.beat(ago=WATCHDOG_S / 2 + 0.5)  # it still reports, but its loops hang
    assert not watchdog.check()
    assert systemd.receive(0) == "STATUS=not alive: no progress in the city consumer process"


def test_ready_restores_its_status_after_a_stall(systemd: Systemd) -> None:
    now = [0.0]
    beat = Heartbeat("button thread", clock=lambda: now[0])
    with Watchdog(Notifier(), [beat]) as watchdog:
        watchdog.ready("serving counter 1")
        assert systemd.receive(WAIT_S) == "READY=1\nSTATUS=serving counter 1"
        systemd.pinged()
        now[0] += 3.0
        systemd.until(lambda m: m.startswith("STATUS=not alive"), "stall")
        beat.beat()
        systemd.until(lambda m: m == "STATUS=serving counter 1", "status again")
        systemd.pinged()


def test_without_a_watchdog_only_readiness_is_sent(
    systemd: Systemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC")
    silent = Heartbeat("main loop", clock=lambda: -1e9)  # long silent: nobody checks
    with Watchdog(Notifier(), [silent]) as watchdog:
        assert watchdog.max_silence_s is None
        watchdog.ready("up")
        assert systemd.receive(WAIT_S) == "READY=1\nSTATUS=up"
        assert watchdog.silent() == []


def test_the_network_thread_beats_while_it_cannot_reach_the_broker(
    systemd: Systemd, broker: OfficeBroker
) -> None:
    # Nothing listens there; each attempt fails and the next waits 5 s: longer than a
    # loop may be silent, so the wait itself must beat.
    mqtt = broker.mqtt("panel-p1").model_copy(update={"port": free_port()})
    connection = MqttConnection(
        mqtt=mqtt, client_id="liveness", backoff=Backoff(5.0, 5.0, rng=Longest())
    )
    connection.start()
    try:
        with Watchdog(Notifier(), [connection.heartbeat]) as watchdog:
            watchdog.ready("connecting")
            # Eight checks: two waits between attempts, every check pinged.
            for _ in range(8):
                systemd.pinged()
        assert not connection.connected.is_set()
        assert not any("not alive" in m for m in systemd.seen)
    finally:
        connection.stop()
    assert BEAT_S * 2 <= WATCHDOG_S / 2  # the loops' pace fits the test's watchdog


# -- the roles ------------------------------------------------------------------------


def test_hub_pings_only_while_its_main_loop_and_network_thread_progress(
    hub: RunningHub, systemd: Systemd
) -> None:
    def serve(stop: threading.Event) -> None:
        serve_hub(hub.queue, stop, Notifier(), [hub.link.connection.heartbeat])

    with running(serve, "hub"):
        systemd.until(lambda m: m.startswith("READY=1"), "readiness")
        systemd.pinged()
        # The queue's lock held, as a stuck database write would hold it.
        with hub.queue._lock:
            systemd.stalled("hub's main loop")
        systemd.recovered()
        with hung_network_thread(hub.link.connection, hub):
            systemd.stalled("MQTT network thread")
        systemd.recovered()


def test_counter_pings_only_while_its_button_and_network_threads_progress(
    hub: RunningHub, broker: OfficeBroker, systemd: Systemd, tmp_path: Path
) -> None:
    factory = MockFactory()
    terminal = CounterTerminal(panel_settings(broker, tmp_path), pin_factory=factory)
    hang = Hang()
    desk = terminal.desks["1"]
    handle = desk.on_event

    def on_event(*args: Any) -> None:
        hang.point()  # a press handled as a stuck outbox write would handle it
        handle(*args)

    desk.on_event = on_event  # type: ignore[method-assign]
    pin = desk.panel.button_pin("next")

    def press() -> None:  # Next, pressed and let go (pull-up: pressed is low)
        pin.drive_low()
        assert desk.panel.buttons.wait_pressed("next", True, WAIT_S)
        pin.drive_high()

    with terminal, running(lambda stop: serve_counter(terminal, stop, Notifier()), "counter"):
        assert terminal.link.connection.subscribed.wait(WAIT_S)
        systemd.until(lambda m: m.startswith("READY=1"), "readiness")
        systemd.pinged()
        with hang.holding(press):
            systemd.stalled("buttons-1 thread")
        systemd.recovered()
        with hung_network_thread(terminal.link.connection, hub):
            systemd.stalled("MQTT network thread")
        systemd.recovered()


def test_display_pings_only_while_its_main_loop_and_network_thread_progress(
    hub: RunningHub,
    broker: OfficeBroker,
    systemd: Systemd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    settings = display_settings(broker.mqtt("display-d1"), broker.site, tmp_path, sound="none")
    display = build_display(settings)
    hang = Hang()
    events = display._window_events

    def window_events(stop: threading.Event) -> None:
        hang.point()  # as a stuck screen driver would
        events(stop)

    monkeypatch.setattr(display, "_window_events", window_events)

    def serve(stop: threading.Event) -> None:
        display.run(stop)

    with running(serve, "display") as stop:
        assert display.link.connection.subscribed.wait(WAIT_S)
        systemd.until(lambda m: m.startswith("READY=1"), "readiness")
        systemd.pinged()
        with hang.holding():
            systemd.stalled("display's main loop")
        systemd.recovered()
        with hung_network_thread(display.link.connection, hub):
            systemd.stalled("MQTT network thread")
        systemd.recovered()
        stop.set()
        display.wake()


def test_kiosk_pings_only_while_its_screen_loop_and_network_thread_progress(
    hub: RunningHub,
    device: Callable[..., DeviceLink],
    systemd: Systemd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    pygame.display.init()
    pygame.font.init()
    try:
        with LoopbackPrinter(REPLIES["ok"]) as loopback:
            office = open_kiosk(device("kiosk-k1", start=False), loopback, tmp_path)
            app = office.app
            hang = Hang()
            step = app.step

            def hung_step(wait_s: float = 0.0) -> None:
                hang.point()  # as a stuck screen would
                step(wait_s)

            monkeypatch.setattr(app, "step", hung_step)
            connection = office.link.connection
            try:
                with running(lambda stop: app.run(stop, Notifier()), "kiosk"):
                    systemd.until(lambda m: m.startswith("READY=1"), "readiness")
                    systemd.pinged()
                    with hang.holding():
                        systemd.stalled("kiosk's screen loop")
                    systemd.recovered()
                    with hung_network_thread(connection, hub):
                        systemd.stalled("MQTT network thread")
                    systemd.recovered()
            finally:
                office.kiosk.stop()
    finally:
        pygame.quit()
