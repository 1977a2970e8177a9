"""Benchmark: a compressed office day with faults; does any citizen's place or call get lost?

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/chaos.py [--scale 1.0] [--keep-logs DIR]

It takes about 2½ minutes on 2 cores; ``--scale 0.1`` runs the same day, faults and
all, in under a minute. ``--keep-logs`` keeps the hub's and the broker's logs.

The office, as ``bench/sync.py`` starts it (and with its helpers): its own Mosquitto
(generated configuration and accounts, on a free port of 127.0.0.1), ``poradovnik hub``
in a process of its own on a temporary SQLite database with the demo office's four
services and 20 counters, and no ticket yet. Then:

* two kiosks, each the real :class:`~kiosk.dispenser.Kiosk` (device link with its outbox,
  offline number blocks, simulated printer) in one process, where simulated citizens
  tap a random service every ``--tap-ms`` on average (exponential pauses). They first
  issue a head start of 40 tickets so that the counters have someone to call;
* 20 counter panels, each a :class:`~sync_agent.link.DeviceLink` with its own
  account and durable outbox, five to a process as in ``bench/sync.py``; at each, a
  clerk presses ``next``, waits for the hub's answer, pauses (exponential,
  ``--think-ms`` on average), presses ``done``, pauses, and so on. A clerk presses
  again only after the previous press was answered, however long that takes;
* the lobby display: a subscriber with the display's account to every topic of the
  site its account may read (``calls``, and whatever else carries a call, such as a
  retained last call per counter), keeping each call (ticket and call count) once.

The day lasts ``--scale`` × 90 s. During it, at fixed fractions of the day:

* 15 % and 55 %: the broker is restarted (stopped, down ``--scale`` × 2 s, started
  again on the same port);
* 35 %: the hub is killed with SIGKILL and started again ``--scale`` × 5 s later
  (systemd's ``RestartSec``);
* 60 %: counter 20's panel goes offline for ``--scale`` × 30 s: a relay between it and
  the broker drops its connection and refuses new ones (its network is cut), while its
  clerk keeps working; then the network is back.

A fault starts once the one before it is over (at a small scale they run late). A hub
found to have exited by itself is started again, as systemd would, and counted.

After the day, every device gets up to 60 s to deliver its outbox (the reconnect
backoff caps at 30 s), the display 5 s more to hear the last calls; then the hub stops
and its database is read through the hub's store. What it checks, with the targets:

* **commands**: sent by the panels, answered (the panel got the hub's reply), applied
  (the hub's database holds its receipt). Target: every command answered and applied;
* **calls**: published (each call the hub's database records, by ticket and call
  count: the calls the lobby is owed) and shown (heard by the display). Target: none
  lost. Each lost call is put down to the fault its press → answer span overlapped.
  Calls heard more than once are counted too (the display must announce each call
  once; a repeat is harmless only if it is recognised);
* **tickets**: issued (a kiosk gave a number, online or from its offline blocks) and
  lost (issued but not in the hub's database at the end). Target: none lost. Tickets
  in the database that no citizen holds are counted too (the hub issued one, its
  answer came after the kiosk's timeout, and the kiosk issued from its block instead);
* **numbers issued twice**: the same (service, office day, number) given to two tickets.
  Target: none.

The press → call latency runs from just before ``DeviceLink.send`` of a ``next`` to the
moment the display first hears the call of the ticket the reply named. It is reported
outside the faults and during them: a press counts as during a fault when its press →
call span overlaps a broker or hub outage (from the fault until the part is back,
plus 5 s for the devices' reconnect backoff); counter 20's presses during its offline
time (until its panel's first answer after the network is back) are reported on their
own. The floor, measured in the same run through the same broker before the devices
start, is the raw MQTT round trip of ``bench/sync.py``.

It prints the figures as text and one JSON line, then whether the targets are met.
Exit status: 0 when they are, 2 when one is missed (the line says ``FAIL`` and which),
1 when the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import queue
import random
import shutil
import socket
import sys
import threading
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

from harness import BenchError, ms, percentiles, run_in_tempdir
from sync import (
    COUNTERS,
    DISPLAY,
    PANEL_PROCESSES,
    SERVICES,
    SITE,
    START_S,
    WAIT_S,
    HubProcess,
    Pace,
    call_round_trips,
    connect,
    hub_settings_file,
    office_logins,
    panel_groups,
    panel_link,
    panel_name,
    seed_office,
    start_hub,
)

from common.identity import HUB_DEVICE_ID
from common.settings import (
    DataSettings,
    DeviceSettings,
    MqttSettings,
    Settings,
    SiteSettings,
    load_settings,
)
from hub.broker import LocalBroker, local_broker
from hub.database import open_store
from hub.model import Action
from sync_agent import protocol as p
from sync_agent.link import DeviceLink, Reply

DAY_S = 90.0
"""The office day at ``--scale 1``."""

BROKER_DOWN_S = 2.0
"""How long the broker stays down at each restart, at ``--scale 1``."""

HUB_DOWN_S = 5.0
"""How long the killed hub stays down, at ``--scale 1`` (systemd's ``RestartSec``)."""

OFFLINE_S = 30.0
"""How long counter 20's panel is offline, at ``--scale 1``."""

OFFLINE_COUNTER = "20"
"""The counter whose panel goes offline."""

THINK_MS = 1000.0
"""Each clerk's mean pause between presses: about ten calls a second in all."""

TAP_MS = 250.0
"""Each kiosk's mean pause between taps: about eight tickets a second from the two."""

KIOSKS = ("kiosk-1", "kiosk-2")

HEAD_START = 40
"""Tickets the kiosks issue before the day starts, so the first presses call someone."""

RECOVERY_S = 5.0
"""After a broker or the hub is back, how long its outage still counts (reconnects)."""

SETTLE_S = 60.0
"""After the day, how long the devices may take to deliver their outboxes."""

LAST_CALLS_S = 5.0
"""After that, how long the display may take to hear the calls it still misses."""

FLOOR_SAMPLES = 400
"""Raw round trips measured for the floor."""

FAULTS = (
    (0.15, "broker"),
    (0.35, "hub"),
    (0.55, "broker"),
    (0.60, "panel"),
)
"""When each fault starts, as a fraction of the day."""

EXIT_MISSED = 2
"""The exit status when the run was measured but a target is missed."""


# -- a network cable that can be pulled ----------------------------------------------


class CuttableNetwork:
    """A TCP relay from 127.0.0.1 to the broker: one device's network, which can be cut.

    The device connects to :attr:`port` instead of the broker's. :meth:`cut` drops its
    connections and refuses new ones, as when its switch port goes dark and the link
    notices; :meth:`mend` lets it connect again.
    """

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._cut = False
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name="network", daemon=True)

    def start(self) -> None:
        """Start relaying."""
        self._thread.start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones until :meth:`mend`."""
        with self._lock:
            self._cut = True
            dropped, self._sockets = self._sockets, set()
        for sock in dropped:
            _drop(sock)

    def mend(self) -> None:
        """Let the device connect again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop relaying and drop every connection."""
        with self._lock:
            self._closed = True
        self.cut()
        _drop(self._listener)
        self._thread.join(WAIT_S)

    def _accept(self) -> None:
        while True:
            try:
                device, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                refused = self._cut or self._closed
            if refused:
                _drop(device)
                continue
            try:
                broker = socket.create_connection(self._upstream, timeout=WAIT_S)
            except OSError:
                _drop(device)  # the broker is down: so is the device's connection
                continue
            broker.settimeout(None)
            for sock in (device, broker):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._cut or self._closed:
                    _drop(device)
                    _drop(broker)
                    continue
                self._sockets |= {device, broker}
            for source, target in ((device, broker), (broker, device)):
                threading.Thread(
                    target=self._pump, args=(source, target), name="network-pump", daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._sockets -= {source, target}
        _drop(source)
        _drop(target)


def _drop(sock: socket.socket) -> None:
    """Shut ``sock`` down (waking whoever waits on it) and close it."""
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


# -- the counters ---------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One press at a counter panel and what became of it; times from ``perf_counter``."""

    counter: str
    msg_id: str
    action: str
    pressed: float
    answered: float | None = None
    """When the panel got the hub's reply (``None``: never)."""
    called: tuple[str, int] | None = None
    """The call the reply names (ticket id, call count), for a ``next`` that called."""
    error: str | None = None
    """The code of an error reply."""


@dataclass
class Clerk:
    """One counter's clerk: ``next``, ``done``, ``next``…, each press after the last answer."""

    counter: str
    link: DeviceLink
    commands: list[Command] = field(default_factory=list)
    _replies: queue.Queue[tuple[str, Reply]] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.link.on_reply(lambda command, reply: self._replies.put((command.msg_id, reply)))

    def work(self, pace: Pace, day_over: Any, give_up: Any) -> None:
        """Press until ``day_over``; wait for each answer until ``give_up``."""
        topic = self.link.topics.counter_cmd(self.counter)
        action = "next"
        while not day_over.wait(pace.pause()):
            command = p.CounterCommand(
                msg_id=uuid.uuid4().hex, action=action, sent_at=datetime.now(UTC)
            )
            pressed = time.perf_counter()
            self.link.send(topic, command)
            reply = self._reply(command.msg_id, give_up)
            if reply is None:
                self.commands.append(Command(self.counter, command.msg_id, action, pressed))
                return
            answered = time.perf_counter()
            if isinstance(reply, p.CommandReply):
                ticket = reply.ticket
                called = (ticket.ticket_id, ticket.calls) if ticket and action == "next" else None
                self.commands.append(
                    Command(self.counter, command.msg_id, action, pressed, answered, called)
                )
                action = "done" if ticket is not None else "next"
            else:
                code = reply.error.code if isinstance(reply, p.ErrorReply) else type(reply).__name__
                self.commands.append(
                    Command(self.counter, command.msg_id, action, pressed, answered, error=code)
                )
                action = "next"

    def _reply(self, msg_id: str, give_up: Any) -> Reply | None:
        while not give_up.is_set():
            try:
                answered, reply = self._replies.get(timeout=0.1)
            except queue.Empty:
                continue
            if answered == msg_id:
                return reply
        return None


def panels_process(
    accounts: dict[str, MqttSettings],
    counters: list[str],
    directory: Path,
    think_s: float,
    ready: Any,
    day_over: Any,
    give_up: Any,
    results: Any,
) -> None:
    """A process of counter panels, a clerk at each, for the day; reports their commands.

    Puts the list of :class:`Command` on ``results`` (or the error's text).
    """
    quiet_logging()
    try:
        with ExitStack() as stack:
            clerks = [
                Clerk(counter, panel_link(counter, accounts, directory, stack))
                for counter in counters
            ]
            pace = Pace(think_s, threading.Event())
            errors: list[str] = []

            def work(clerk: Clerk) -> None:
                try:
                    clerk.work(pace, day_over, give_up)
                except Exception as failed:
                    errors.append(f"counter {clerk.counter}: {failed!r}")

            ready.wait(START_S)
            threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clerks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results.put(errors[0] if errors else [c for clerk in clerks for c in clerk.commands])
    except threading.BrokenBarrierError:
        results.put(f"panels {', '.join(counters)}: another process gave up")
    except Exception as failed:  # reported to the main process, which stops the run
        results.put(f"panels {', '.join(counters)}: {failed!r}")


# -- the kiosks -----------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    """A ticket a kiosk gave a citizen."""

    ticket_id: str
    service: str
    day: date
    number: str
    offline: bool


@dataclass
class KioskDay:
    """What the kiosks report of the day."""

    issued: list[Issued] = field(default_factory=list)
    refused: Tally[str] = field(default_factory=Tally)
    """Taps that got no ticket, by reason."""
    undelivered: int = 0
    """Offline tickets still in the kiosks' outboxes at the end."""


def kiosk_settings(mqtt: MqttSettings, name: str, directory: Path) -> Settings:
    """A kiosk's settings: its account, its data directory, a simulated printer."""
    return Settings(
        role="kiosk",
        site=SiteSettings(id=SITE),
        mqtt=mqtt,
        data=DataSettings(dir=directory / name),
        device=DeviceSettings(id=name),
    )


def kiosks_process(
    accounts: dict[str, MqttSettings],
    directory: Path,
    tap_s: float,
    ready: Any,
    day_over: Any,
    give_up: Any,
    results: Any,
) -> None:
    """The kiosks: start them, issue the head start, tap until ``day_over``, report.

    Waits for their outboxes to be delivered until ``give_up``. Puts a
    :class:`KioskDay` on ``results`` (or the error's text).
    """
    quiet_logging()
    from kiosk.app import build_kiosk  # noqa: PLC0415 (the kiosk's process only)
    from kiosk.catalog import Catalog  # noqa: PLC0415
    from kiosk.dispenser import Kiosk  # noqa: PLC0415

    day = KioskDay()
    lock = threading.Lock()
    codes = [service.code for service in SERVICES]
    rng = random.Random()

    def tap(kiosk: Kiosk, service: str) -> None:
        outcome = kiosk.issue(service, "sk")
        with lock:
            if outcome.ticket is None:
                day.refused[outcome.refused or "unknown"] += 1
                return
            ticket = outcome.ticket
            day.issued.append(
                Issued(
                    ticket.ticket_id,
                    service,
                    ticket.issued_at.date(),
                    ticket.number,
                    ticket.offline,
                )
            )

    errors: list[str] = []

    def citizens(kiosk: Kiosk, pace: Pace) -> None:
        try:
            while not day_over.wait(pace.pause()):
                tap(kiosk, rng.choice(codes))
        except Exception as failed:
            errors.append(f"{kiosk.link.device_id}: {failed!r}")

    def can_issue(kiosk: Kiosk) -> bool:
        """Online, with the services and offline blocks of each."""
        return kiosk.online and all(map(kiosk.can_issue_offline, codes))

    def delivered(kiosk: Kiosk) -> bool:
        return kiosk.link.queued == 0 or give_up.is_set()

    try:
        with ExitStack() as stack:
            kiosks = []
            for name in KIOSKS:
                settings = kiosk_settings(accounts[name], name, directory)
                kiosk = build_kiosk(settings, Catalog.load_all(settings.site.languages))
                stack.callback(kiosk.stop)
                kiosk.start()
                kiosks.append(kiosk)
            for kiosk in kiosks:
                _await(partial(can_issue, kiosk), START_S)
            for n in range(HEAD_START):
                tap(kiosks[n % len(kiosks)], codes[n % len(codes)])
            ready.wait(START_S)
            pace = Pace(tap_s, threading.Event())
            threads = [
                threading.Thread(target=citizens, args=(kiosk, pace), daemon=True)
                for kiosk in kiosks
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for kiosk in kiosks:
                _await(partial(delivered, kiosk), SETTLE_S * 2)
            day.undelivered = sum(kiosk.link.queued for kiosk in kiosks)
            results.put(f"kiosks: {errors[0]}" if errors else day)
    except threading.BrokenBarrierError:
        results.put("kiosks: another process gave up")
    except Exception as failed:  # reported to the main process, which stops the run
        results.put(f"kiosks: {failed!r}")


def quiet_logging() -> None:
    """Log errors only, and not the MQTT library's about connections the faults break."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("sync_agent.connection.paho").setLevel(logging.CRITICAL)


def _await(condition: Callable[[], bool], timeout_s: float) -> None:
    """Check ``condition`` every 50 ms until it holds; :class:`BenchError` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"still waiting after {timeout_s:.0f} s")
        time.sleep(0.05)


# -- the display ----------------------------------------------------------------------


@dataclass
class Lobby:
    """The lobby display: every call it hears, on any topic, kept once by its identity.

    A call's identity is its ticket and its call count (a recall counts again).
    """

    heard: dict[tuple[str, int], float] = field(default_factory=dict)
    """When each call was first heard (``perf_counter``)."""
    repeats: int = 0
    """Calls heard again after their first time."""
    counter_states: threading.Event = field(default_factory=threading.Event)
    """Set once a retained counter state arrives: the hub is subscribed and serving."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, topic: str, payload: bytes) -> None:
        """Any message the display's account may read (in the network thread)."""
        if "/counter/" in topic and topic.endswith("/state"):
            self.counter_states.set()
        if b'"counter_name"' not in payload:
            return  # not a call (a cheap test before the schema)
        try:
            call = p.decode(p.Call, payload)
        except p.ProtocolError:
            return
        at = time.perf_counter()
        with self._lock:
            key = (call.ticket_id, call.calls)
            if key in self.heard:
                self.repeats += 1
            else:
                self.heard[key] = at

    def has(self, calls: set[tuple[str, int]]) -> bool:
        """Whether every one of ``calls`` has been heard."""
        with self._lock:
            return calls <= self.heard.keys()

    def calls(self) -> tuple[dict[tuple[str, int], float], int]:
        """The calls heard so far (when each was first heard) and how many came again."""
        with self._lock:
            return dict(self.heard), self.repeats


@contextmanager
def listening_lobby(mqtt: MqttSettings, lobby: Lobby) -> Iterator[None]:
    """The display's link, subscribed to everything of the site its account may read."""
    with ExitStack() as stack:
        link = DeviceLink(mqtt=mqtt, site=SITE, device_id=DISPLAY, role="display", outbox_path=None)
        link.subscribe(link.topics.all(), lobby.on_message)
        connect(link, stack)
        yield


# -- the day and its faults -----------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A fault, from its start until what it broke is back (``perf_counter`` times)."""

    kind: str
    start: float
    end: float

    def overlaps(self, start: float, end: float) -> bool:
        """Whether the span from ``start`` to ``end`` overlaps this window."""
        return start <= self.end and end >= self.start


@dataclass
class Office:
    """The running office's parts that the faults act on."""

    broker: LocalBroker
    hub_dir: Path
    config: Path
    settings: Settings
    """The hub's."""
    hub_log: IO[bytes]
    hub: HubProcess | None = None
    starts: int = 0
    crashes: int = 0
    """Times the hub was found to have exited by itself (it is started again)."""

    def start_hub(self) -> None:
        """Start the hub (again) and wait until it is ready."""
        self.starts += 1
        try:
            self.hub = start_hub(self.config, self.hub_dir / f"notify-{self.starts}", self.hub_log)
        except BenchError as failed:
            raise BenchError(f"{failed}: {self.hub_log_tail()}") from None

    def supervise(self) -> None:
        """Start the hub again if it exited by itself, as systemd's ``Restart=always`` would."""
        if self.hub is not None and self.hub.process.poll() is not None:
            self.crashes += 1
            self.hub.notify.close()
            self.start_hub()

    def kill_hub(self) -> None:
        """SIGKILL the hub, as a power cut or the kernel's OOM killer would."""
        self.supervise()
        assert self.hub is not None
        self.hub.process.kill()
        self.hub.process.wait()
        self.hub.notify.close()
        self.hub = None

    def stop_hub(self) -> None:
        """Stop the hub as systemd does."""
        if self.hub is not None:
            self.hub.stop()
            self.hub = None

    def hub_log_tail(self) -> str:
        """The end of the hub's output, for error messages."""
        lines = (self.hub_dir / "hub.log").read_text(errors="replace").splitlines()
        return " | ".join(lines[-10:])


def open_office(directory: Path, stack: ExitStack) -> Office:
    """Start the broker (with every device's account) and the hub; ``stack`` stops them.

    The hub's database holds the office (as ``bench/sync.py`` seeds it) and no ticket.
    """
    logins = office_logins() + [(name, "kiosk", {"device_id": name}) for name in KIOSKS]
    broker = stack.enter_context(local_broker(directory / "broker", SITE, logins))
    hub_dir = directory / "hub"
    hub_dir.mkdir()
    config = hub_settings_file(hub_dir, broker.accounts[HUB_DEVICE_ID])
    settings = load_settings(config)
    seed_office(settings, 0, broker.logins)
    hub_log = stack.enter_context((hub_dir / "hub.log").open("ab"))
    office = Office(broker, hub_dir, config, settings, hub_log)
    stack.callback(office.stop_hub)
    office.start_hub()
    return office


def run_faults(
    office: Office, network: CuttableNetwork, scale: float, began: float
) -> list[Window]:
    """Play the day's faults at their times (each once the one before it is over)."""
    day_s = DAY_S * scale
    windows = []
    for fraction, kind in FAULTS:
        delay = began + fraction * day_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # the schedule itself: nothing to wait for but the clock
        office.supervise()
        start = time.perf_counter()
        if kind == "broker":
            office.broker.process.stop()
            time.sleep(BROKER_DOWN_S * scale)
            office.broker.process.start()
            windows.append(Window(kind, start, time.perf_counter() + RECOVERY_S))
        elif kind == "hub":
            office.kill_hub()
            time.sleep(HUB_DOWN_S * scale)
            office.start_hub()
            windows.append(Window(kind, start, time.perf_counter() + RECOVERY_S))
        else:
            network.cut()
            time.sleep(OFFLINE_S * scale)
            network.mend()
            windows.append(Window(kind, start, time.perf_counter()))
    return windows


@dataclass(frozen=True)
class Database:
    """What the hub's database holds of the day at the end."""

    applied: set[str]
    """The msg ids of the commands whose receipt it holds."""
    published: set[tuple[str, int]]
    """Every call it records, by ticket and call count: the calls the lobby is owed."""
    kept: set[str]
    """The issued tickets it holds."""
    tickets: int
    """Every ticket of the day it holds, issued by a kiosk or not."""


@dataclass(frozen=True)
class Day:
    """What one run measured."""

    commands: list[Command]
    kiosks: KioskDay
    database: Database
    heard: dict[tuple[str, int], float]
    """When the display first heard each call."""
    repeats: int
    windows: list[Window]
    floor: list[float]
    elapsed: float
    """The day, from the first press to the last (faults included)."""
    settle_s: float
    """From the end of the day until every device had delivered its outbox (or gave up)."""
    hub_crashes: int


@dataclass
class Devices:
    """The device processes (four of panels, one of kiosks) and what they share with us."""

    workers: list[Any]
    ready: Any
    """A barrier: every device is up (and the head start issued); the day begins."""
    day_over: Any
    """Set when the day ends: no more presses and taps."""
    give_up: Any
    """Set when the devices may stop waiting for answers and outboxes."""
    results: Any
    """Where each process puts its report."""

    def collect(self) -> tuple[list[Command], KioskDay]:
        """Every process's report: the panels' commands and the kiosks' day."""
        commands: list[Command] = []
        kiosks = KioskDay()
        for _ in self.workers:
            try:
                result = self.results.get(timeout=SETTLE_S * 3)
            except queue.Empty:
                raise BenchError("a device process did not report") from None
            if isinstance(result, str):
                raise BenchError(result)
            if isinstance(result, KioskDay):
                kiosks = result
            else:
                commands += result
        return commands, kiosks


def start_devices(
    accounts: dict[str, MqttSettings],
    directory: Path,
    think_s: float,
    tap_s: float,
    stack: ExitStack,
) -> Devices:
    """Start the panels' and the kiosks' processes; ``stack`` stops them."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(PANEL_PROCESSES + 2)
    day_over, give_up = context.Event(), context.Event()
    results = context.Queue()
    shared = (ready, day_over, give_up, results)
    workers = [
        context.Process(
            target=panels_process,
            args=(accounts, group, directory / "panels", think_s, *shared),
            daemon=True,
        )
        for group in panel_groups()
    ]
    workers.append(
        context.Process(
            target=kiosks_process,
            args=(accounts, directory / "kiosks", tap_s, *shared),
            daemon=True,
        )
    )
    for worker in workers:
        worker.start()
        stack.callback(worker.join, WAIT_S)
        stack.callback(worker.terminate)
    stack.callback(give_up.set)
    stack.callback(day_over.set)
    stack.callback(ready.abort)
    return Devices(workers, ready, day_over, give_up, results)


def measure(
    directory: Path, scale: float, think_s: float, tap_s: float, keep_logs: Path | None = None
) -> Day:
    """Run the office through its day and faults; stop everything, also on Ctrl+C.

    With ``keep_logs`` the hub's and the broker's logs are copied there at the end.
    """
    with ExitStack() as stack:
        if keep_logs is not None:
            stack.callback(copy_logs, directory, keep_logs)
        office = open_office(directory, stack)
        accounts = office.broker.accounts
        lobby = Lobby()
        stack.enter_context(listening_lobby(accounts[DISPLAY], lobby))
        if not lobby.counter_states.wait(WAIT_S):
            raise BenchError("the hub published no counter state")
        floor = call_round_trips(accounts, FLOOR_SAMPLES)

        network = CuttableNetwork("127.0.0.1", accounts[HUB_DEVICE_ID].port)
        network.start()
        stack.callback(network.close)
        offline = panel_name(OFFLINE_COUNTER)
        accounts[offline] = accounts[offline].model_copy(update={"port": network.port})
        devices = start_devices(accounts, directory, think_s, tap_s, stack)
        try:
            devices.ready.wait(START_S * 2)
        except threading.BrokenBarrierError:
            raise BenchError(
                _first_error(devices.results) or "the devices did not get ready"
            ) from None

        began = time.perf_counter()
        windows = run_faults(office, network, scale, began)
        rest = began + DAY_S * scale - time.perf_counter()
        if rest > 0:
            time.sleep(rest)  # the rest of the day, without faults
        devices.day_over.set()
        ended = time.perf_counter()
        settled = threading.Timer(SETTLE_S, devices.give_up.set)
        settled.daemon = True
        settled.start()
        stack.callback(settled.cancel)
        office.supervise()
        commands, kiosks = devices.collect()
        settle_s = time.perf_counter() - ended
        devices.give_up.set()
        owed = {c.called for c in commands if c.called is not None}
        deadline = time.monotonic() + LAST_CALLS_S
        while not lobby.has(owed) and time.monotonic() < deadline:
            time.sleep(0.1)  # calls that never come are the lost ones: wait a bounded time
        office.supervise()
        office.stop_hub()
        heard, repeats = lobby.calls()
        return Day(
            commands,
            kiosks,
            read_back(office.settings, commands, kiosks),
            heard,
            repeats,
            windows,
            floor,
            ended - began,
            settle_s,
            office.crashes,
        )


def copy_logs(directory: Path, to: Path) -> None:
    """Copy the hub's and the broker's logs of the run in ``directory`` to ``to``."""
    to.mkdir(parents=True, exist_ok=True)
    for log in (*directory.glob("hub/*.log"), *directory.glob("broker/*.log")):
        shutil.copy(log, to / log.name)


def _first_error(results: Any) -> str | None:
    """The first error a device process reported, if any did by now."""
    try:
        result = results.get(timeout=1.0)
    except queue.Empty:
        return None
    return result if isinstance(result, str) else None


def read_back(settings: Settings, commands: list[Command], kiosks: KioskDay) -> Database:
    """Read what the hub's database holds of the day, through the hub's store."""
    store = open_store(settings)
    try:
        applied = {
            c.msg_id
            for c in commands
            if store.receipt(f"counter:{c.counter}", c.msg_id) is not None
        }
        calls: Tally[str] = Tally()
        for event in store.events(limit=1_000_000):
            if event.action in (Action.CALL, Action.RECALL, Action.UNPARK) and event.ticket_id:
                calls[event.ticket_id] += 1
        published = {(ticket, n) for ticket, count in calls.items() for n in range(1, count + 1)}
        kept = {t.ticket_id for t in kiosks.issued if store.ticket(t.ticket_id) is not None}
        tickets = sum(store.count_tickets(day) for day in {t.day for t in kiosks.issued})
    finally:
        store.close()
    return Database(applied, published, kept, tickets)


# -- the figures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Latencies:
    """Press → call of each ``next`` that called, in seconds, by when it happened."""

    outside: list[float]
    during: list[float]
    offline: list[float]
    """Counter 20's presses while its panel was offline."""


def fault_windows(day: Day) -> list[Window]:
    """The day's faults; the offline panel's lasts until its first answer after it is back."""
    windows = []
    for window in day.windows:
        if window.kind == "panel":
            back = [
                c.answered
                for c in day.commands
                if c.counter == OFFLINE_COUNTER
                and c.answered is not None
                and c.answered > window.end
            ]
            windows.append(Window(window.kind, window.start, min(back, default=math.inf)))
        else:
            windows.append(window)
    return windows


def fault_of(windows: list[Window], command: Command, end: float) -> str | None:
    """The fault a command overlapped from its press to ``end``, if any.

    The offline panel's fault counts for its own counter's commands only.
    """
    for window in sorted(windows, key=lambda w: w.kind != "panel"):
        mine = window.kind != "panel" or command.counter == OFFLINE_COUNTER
        if mine and window.overlaps(command.pressed, end):
            return window.kind
    return None


def latencies(day: Day, windows: list[Window]) -> Latencies:
    """Sort each heard call's press → call time by the faults it overlapped."""
    outside, during, offline = [], [], []
    for command in day.commands:
        heard = day.heard.get(command.called) if command.called is not None else None
        if heard is None:
            continue
        latency = heard - command.pressed
        fault = fault_of(windows, command, heard)
        if fault is None:
            outside.append(latency)
        elif fault == "panel":
            offline.append(latency)
        else:
            during.append(latency)
    return Latencies(outside, during, offline)


def lost_calls(day: Day, windows: list[Window], lost: set[tuple[str, int]]) -> dict[str, int]:
    """How many calls were lost during each kind of fault (``none``: outside them all).

    ``unknown``: a call the hub recorded for a command no panel saw answered.
    """
    by_call = {c.called: c for c in day.commands if c.called is not None}
    tally: Tally[str] = Tally()
    for call in lost:
        command = by_call.get(call)
        if command is None:
            tally["unknown"] += 1
            continue
        end = command.answered if command.answered is not None else command.pressed
        tally[fault_of(windows, command, end) or "none"] += 1
    return dict(tally)


def p99_ms(values: list[float]) -> float | None:
    """The p99 of ``values`` in ms (``None`` for fewer than two)."""
    return ms(percentiles(values)[1]) if len(values) >= 2 else None


def figures(day: Day, scale: float) -> dict[str, Any]:
    """Everything the run reports, as the JSON line's fields."""
    commands = day.commands
    answered = [c for c in commands if c.answered is not None]
    issued = day.kiosks.issued
    numbers: dict[tuple[str, date, str], set[str]] = {}
    for ticket in issued:
        numbers.setdefault((ticket.service, ticket.day, ticket.number), set()).add(ticket.ticket_id)
    windows = fault_windows(day)
    lat = latencies(day, windows)
    floor_p50, floor_p99 = (ms(v) for v in percentiles(day.floor))
    outside_p99 = p99_ms(lat.outside)
    database = day.database
    shown = database.published & day.heard.keys()

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "bench": "chaos",
        "scale": scale,
        "day_s": round(day.elapsed, 1),
        "settle_s": round(day.settle_s, 1),
        "hub_crashes": day.hub_crashes,
        "counters": COUNTERS,
        "kiosks": len(KIOSKS),
        "faults": [w.kind for w in day.windows],
        "commands_sent": len(commands),
        "commands_answered": len(answered),
        "commands_applied": len(database.applied),
        "commands_unanswered": len(commands) - len(answered),
        "command_errors": dict(Tally(c.error for c in answered if c.error is not None)),
        "calls_published": len(database.published),
        "calls_shown": len(shown),
        "calls_lost": len(database.published) - len(shown),
        "calls_lost_by_fault": lost_calls(day, windows, database.published - shown),
        "calls_heard_again": day.repeats,
        "tickets_issued": len(issued),
        "tickets_issued_offline": sum(t.offline for t in issued),
        "tickets_lost": len(issued) - len(database.kept),
        "tickets_undelivered": day.kiosks.undelivered,
        "tickets_nobody_holds": database.tickets - len(database.kept),
        "taps_refused": dict(day.kiosks.refused),
        "numbers_issued_twice": sum(len(ids) > 1 for ids in numbers.values()),
        "p50_outside_ms": rounded(
            ms(percentiles(lat.outside)[0]) if len(lat.outside) >= 2 else None
        ),
        "p99_outside_ms": rounded(outside_p99),
        "p99_during_ms": rounded(p99_ms(lat.during)),
        "calls_outside": len(lat.outside),
        "calls_during": len(lat.during),
        "offline_panel_calls": len(lat.offline),
        "offline_panel_max_ms": rounded(ms(max(lat.offline)) if lat.offline else None),
        "floor_p50_ms": round(floor_p50, 3),
        "floor_p99_ms": round(floor_p99, 3),
        "ratio_p99": rounded(outside_p99 / floor_p99 if outside_p99 is not None else None),
    }


def missed(results: dict[str, Any]) -> list[str]:
    """The targets the run missed, in words."""
    counts = {
        "commands unanswered": results["commands_unanswered"],
        "commands not applied": results["commands_sent"] - results["commands_applied"],
        "calls lost": results["calls_lost"],
        "tickets lost": results["tickets_lost"],
        "numbers issued twice": results["numbers_issued_twice"],
    }
    return [f"{what}: {count}" for what, count in counts.items() if count]


def report(results: dict[str, Any]) -> list[str]:
    """Print the figures as text, then as one JSON line, then the verdict; return the misses."""

    def value(key: str, unit: str = " ms") -> str:
        found = results[key]
        return "–" if found is None else f"{found:.2f}{unit}"

    r = results
    print(
        f"day:      {r['day_s']} s, {r['counters']} counters, {r['kiosks']} kiosks; "
        f"faults: {', '.join(r['faults'])}; outboxes delivered {r['settle_s']} s after the day; "
        f"the hub exited by itself {r['hub_crashes']} times"
    )
    print(
        f"commands: {r['commands_sent']} sent, {r['commands_answered']} answered, "
        f"{r['commands_applied']} applied, {r['commands_unanswered']} unanswered "
        f"(error replies: {r['command_errors'] or 'none'})"
    )
    print(
        f"calls:    {r['calls_published']} published (the hub's database), "
        f"{r['calls_shown']} shown on the display, {r['calls_lost']} lost "
        f"(by fault: {r['calls_lost_by_fault'] or 'none'}), "
        f"{r['calls_heard_again']} heard again"
    )
    print(
        f"tickets:  {r['tickets_issued']} issued ({r['tickets_issued_offline']} offline), "
        f"{r['tickets_lost']} lost ({r['tickets_undelivered']} still in a kiosk's outbox), "
        f"{r['numbers_issued_twice']} numbers issued twice; {r['tickets_nobody_holds']} in the "
        f"database that no citizen holds; taps refused: {r['taps_refused'] or 'none'}"
    )
    print(
        f"press → call p99: {value('p99_outside_ms')} outside the faults "
        f"({r['calls_outside']} calls, p50 {value('p50_outside_ms')}), "
        f"{value('p99_during_ms')} during them ({r['calls_during']} calls); "
        f"offline panel: {r['offline_panel_calls']} calls, max {value('offline_panel_max_ms')}"
    )
    print(
        f"floor:    p50 {r['floor_p50_ms']:.2f} ms  p99 {r['floor_p99_ms']:.2f} ms  "
        f"raw MQTT QoS 1 round trip; ratio: {value('ratio_p99', '×')} the floor's p99 "
        "(outside the faults)"
    )
    misses = missed(results)
    print(json.dumps({**results, "targets_met": not misses}))
    if misses:
        print(f"FAIL: {'; '.join(misses)}")
    else:
        print("targets met: nothing lost, nothing duplicated, every command answered")
    return misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help=f"the day ({DAY_S:.0f} s), the outages and the offline panel "
        f"({OFFLINE_S:.0f} s) last this many times as long",
    )
    parser.add_argument(
        "--think-ms", type=float, default=THINK_MS, help="each clerk's mean pause, in ms"
    )
    parser.add_argument(
        "--tap-ms", type=float, default=TAP_MS, help="each kiosk's mean pause between taps, in ms"
    )
    parser.add_argument(
        "--keep-logs",
        type=Path,
        metavar="DIR",
        help="copy the hub's and the broker's logs to DIR at the end",
    )
    args = parser.parse_args()
    if not 0.05 <= args.scale <= 10:
        parser.error("--scale must be from 0.05 to 10")
    if args.think_ms <= 0 or args.tap_ms <= 0:
        parser.error("--think-ms and --tap-ms must be more than 0")
    quiet_logging()
    day = run_in_tempdir(
        lambda tmp: measure(
            tmp, args.scale, args.think_ms / 1000, args.tap_ms / 1000, args.keep_logs
        ),
        "the broker, the hub and the devices",
    )
    if report(figures(day, args.scale)):
        sys.exit(EXIT_MISSED)


if __name__ == "__main__":
    main()
