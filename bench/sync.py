"""Benchmark: a clerk's ``next`` press → the lobby's ``calls`` message, 20 counters.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/sync.py [--presses 50] [--think-ms 200]

It starts its own Mosquitto (generated configuration and accounts, in a temporary
directory, on a free port of 127.0.0.1) and ``poradovnik hub`` in a process of its
own, on a temporary SQLite database holding the demo office's four services, 20
counters and enough waiting tickets that every press calls someone. The benchmark's
process plays the lobby display, subscribed to ``calls``; four processes play 20
counter panels, each a :class:`~sync_agent.link.DeviceLink` with its
own account and durable outbox, and a clerk thread at each.

Office pace: each clerk presses ``next`` ``--presses`` times, waits for the hub's
reply, then pauses a random time (exponential, ``--think-ms`` on average) before
the next press, so the counters press independently and now and then together.
The targets apply to this phase. Capacity: then every clerk presses again and again
without pause; that phase reports presses per second (its latencies only measure
the queue of 20 commands in front of the hub).

The latency of a press runs from just before ``DeviceLink.send`` (so it includes
the outbox's synced write, as a real press does) to the moment the display receives
the ``calls`` message of that press. Calls are matched to presses per counter, in
order, and each is checked against the ticket the hub's reply to that press named.
Each counter's first presses warm up and are not counted.

The floor, measured in the same run through the same broker before the panels
start, is a raw MQTT round trip: a call-sized QoS 1 message published, echoed back
by a second paho client from its message callback, and received, one at a time,
as many samples as measured presses. It prints the p50 and p99 of both, the ratio
of the p99s, whether the targets are met, the panels' time per ``send``, the
capacity, and one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import multiprocessing
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as paho
from harness import BenchError, ms, percentiles, run_in_tempdir
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from common.identity import HUB_DEVICE_ID
from common.settings import MqttSettings, Settings, load_settings
from hub import demo_office
from hub.app import open_queue
from hub.broker import LocalBroker, free_port, local_broker
from hub.model import Counter
from sync_agent import protocol as p
from sync_agent.broker_accounts import Account
from sync_agent.link import DeviceLink, Reply

COUNTERS = 20
"""Counters pressing ``next`` at the same time."""

TARGET_RATIO = 10.0
"""The press → call p99 must stay under this many times the raw round trip's p99 …"""

TARGET_P99_MS = 20.0
"""… and under this many milliseconds, on a 2-core machine."""

WARMUP_PRESSES = 2
"""Presses per counter before the measured ones (first messages, caches)."""

SERVICES = demo_office.SERVICES
"""The demo office's four services; every counter serves all of them."""

THINK_MS = 200.0
"""Each clerk's mean pause between presses. A real clerk presses every few minutes; 20
counters pressing every 0.2 s on average make 100 presses a second, about a thousand
times a busy office."""

PANEL_PROCESSES = 4
"""Processes the 20 panels run in, five each."""

CAPACITY_PRESSES = 25
"""Presses per counter in the phase without pauses."""

MAX_PRESSES = 150
"""A service has at most 999 live ticket numbers: 4 × 999 tickets cover both phases."""

SITE = "bench"
DISPLAY = "bench-display"

WAIT_S = 10.0
"""How long anything (a connection, a reply, a call) may take before the run fails."""


START_S = 60.0
"""How long the hub and the panel processes may take to start and connect (a busy
machine loads the hub's modules slowly)."""


def counter_ids() -> list[str]:
    """The counters' ids: ``1`` … ``20``."""
    return [str(n) for n in range(1, COUNTERS + 1)]


def panel_name(counter: str) -> str:
    """The user name and device id of the panel at ``counter``."""
    return f"panel-{counter}"


# -- the office: broker, hub, devices ------------------------------------------------


def office_logins() -> list[tuple[str, Any, dict[str, Any]]]:
    """The broker accounts of the hub, the display and every counter panel.

    As :func:`~hub.broker.local_broker` takes them: ``(username, role, extra)``.
    """
    roles: list[tuple[str, Any, dict[str, Any]]] = [
        (HUB_DEVICE_ID, "hub", {"device_id": HUB_DEVICE_ID}),
        (DISPLAY, "display", {"device_id": DISPLAY}),
    ]
    roles += [
        (panel_name(c), "counter", {"device_id": panel_name(c), "counters": [c]})
        for c in counter_ids()
    ]
    return roles


@contextmanager
def office_broker(directory: Path) -> Iterator[LocalBroker]:
    """Run a Mosquitto with accounts for the hub, the display and every counter panel.

    Yields the broker: the accounts, and the ``[mqtt]`` settings of each by user name.
    """
    with local_broker(directory, SITE, office_logins()) as broker:
        yield broker


def seed_office(settings: Settings, tickets: int, accounts: Iterable[Account]) -> None:
    """Write the office into the hub's database: 4 services, 20 counters, ``tickets`` waiting,
    and the broker ``accounts`` (the hub answers each panel on its account's reply topic).

    Every counter serves every service, each counter preferring another one first, and
    the tickets are spread evenly over the services.
    """
    queue_ = open_queue(settings)
    try:
        codes = [service.code for service in SERVICES]
        for position, service in enumerate(SERVICES):
            queue_.save_service(service, position)
        for position, counter in enumerate(counter_ids()):
            first = position % len(codes)
            served = tuple(codes[first:] + codes[:first])
            queue_.save_counter(Counter(counter, f"Okienko {counter}", served), position)
        for n in range(tickets):
            queue_.issue(codes[n % len(codes)])
        for account in accounts:
            queue_.store.save_account(account, at=datetime.now(UTC))
    finally:
        queue_.store.close()


def hub_settings_file(directory: Path, mqtt: MqttSettings) -> Path:
    """Write the settings of the benchmark's hub and return the file's path."""
    password = mqtt.password.get_secret_value() if mqtt.password is not None else ""
    path = directory / "hub.toml"
    path.write_text(
        f'role = "hub"\n[site]\nid = "{SITE}"\n[data]\ndir = "{directory}"\n'
        f'[mqtt]\nhost = "{mqtt.host}"\nport = {mqtt.port}\n'
        f'username = "{mqtt.username}"\npassword = "{password}"\n'
        f'[web]\nport = {free_port()}\n[logging]\nlevel = "WARNING"\n'
    )
    return path


@dataclass
class HubProcess:
    """``poradovnik hub`` running in a process of its own, and the notify socket it talks to.

    The socket stays open while the hub runs, as systemd's does, so that its later
    notifications (watchdog, status, stopping) arrive somewhere.
    """

    process: subprocess.Popen[bytes]
    notify: socket.socket

    def stop(self) -> None:
        """Stop the hub as systemd does (SIGTERM, then SIGKILL) and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.notify.close()


def start_hub(config: Path, notify: Path, output: IO[bytes] | None = None) -> HubProcess:
    """Start ``poradovnik hub --config config``; return once it is ready.

    Ready is what the hub tells its (systemd) notify socket, made at ``notify`` (which
    must not exist yet). ``output`` takes the hub's output (by default it goes to
    ours). The hub's subscriptions and retained states follow readiness.
    """
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listening.bind(str(notify))
    listening.settimeout(START_S)
    hub = HubProcess(
        subprocess.Popen(
            [sys.executable, "-m", "poradovnik.cli", "hub", "--config", str(config)],
            env={**os.environ, "NOTIFY_SOCKET": str(notify)},
            stdout=output,
            stderr=output,
        ),
        listening,
    )
    try:
        while b"READY=1" not in listening.recv(4096).split(b"\n"):
            pass
    except TimeoutError:
        hub.stop()
        raise BenchError("the hub did not get ready") from None
    except BaseException:
        hub.stop()
        raise
    return hub


@contextmanager
def running_hub(directory: Path, broker: LocalBroker, tickets: int) -> Iterator[None]:
    """Run ``poradovnik hub`` in its own process, as on the office's hub machine.

    The office (see :func:`seed_office`) is written first; the context is entered once
    the hub has told its (systemd) notify socket that it is ready. The hub's
    subscriptions and retained states follow; :func:`measure` waits for those.
    """
    directory.mkdir(parents=True)
    config = hub_settings_file(directory, broker.accounts[HUB_DEVICE_ID])
    seed_office(load_settings(config), tickets, broker.logins)
    hub = start_hub(config, directory / "notify")
    try:
        yield
    finally:
        hub.stop()


def connect(link: DeviceLink, stack: ExitStack) -> DeviceLink:
    """Start ``link``, have ``stack`` stop it, and wait until its subscriptions stand."""
    stack.callback(link.stop)
    link.start()
    if not link.connection.subscribed.wait(WAIT_S):
        raise BenchError(f"device {link.device_id} did not connect and subscribe")
    return link


def panel_link(
    counter: str, accounts: dict[str, MqttSettings], directory: Path, stack: ExitStack
) -> DeviceLink:
    """Counter ``counter``'s panel on the broker, its outbox in ``directory``; connected,
    and stopped by ``stack``."""
    name = panel_name(counter)
    link = DeviceLink(
        mqtt=accounts[name],
        site=SITE,
        device_id=name,
        role="counter",
        outbox_path=directory / f"{name}.outbox.sqlite3",
    )
    return connect(link, stack)


# -- press → call --------------------------------------------------------------------


@dataclass
class Pace:
    """How the clerks press: ``think_s`` is each clerk's mean pause between presses.

    The pauses are random (exponential), so the 20 counters press independently of each
    other and now and then at the same moment; 0 means no pause at all (each clerk
    presses again as soon as the hub answers).
    """

    think_s: float
    stop: threading.Event
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pause(self) -> float:
        """A clerk's next pause, in seconds."""
        with self._lock:
            return self._rng.expovariate(1 / self.think_s)


@dataclass(frozen=True)
class Press:
    """One press of ``next`` as its panel saw it; times from ``time.perf_counter``.

    On Linux ``perf_counter`` is the system-wide monotonic clock, so the display's
    process can compare its own times with these.
    """

    pressed: float
    send_s: float
    """How long ``DeviceLink.send`` took (the outbox's synced write)."""
    ticket_id: str
    """The ticket the hub's reply named."""


@dataclass
class Clerk:
    """One counter's clerk: presses ``next`` on its panel, each after the previous reply."""

    counter: str
    link: DeviceLink
    presses: list[Press] = field(default_factory=list)
    _replies: queue.Queue[Reply] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.link.on_reply(lambda _command, reply: self._replies.put(reply))

    def press(self, presses: int, start: threading.Barrier, pace: Pace) -> None:
        """Press ``presses`` times once everyone is at ``start``, at ``pace``.

        Gives up when ``pace.stop`` is set.
        """
        topic = self.link.topics.counter_cmd(self.counter)
        start.wait()
        for index in range(presses):
            if index and pace.think_s and pace.stop.wait(pace.pause()):
                return
            command = p.CounterCommand(msg_id=uuid.uuid4().hex, action="next")
            pressed = time.perf_counter()
            self.link.send(topic, command)
            send_s = time.perf_counter() - pressed
            reply = self._reply(pace.stop)
            if reply is None:
                return
            if not isinstance(reply, p.CommandReply) or reply.ticket is None:
                raise BenchError(f"counter {self.counter}: the hub answered {reply!r}")
            self.presses.append(Press(pressed, send_s, reply.ticket.ticket_id))

    def _reply(self, stop: threading.Event) -> Reply | None:
        deadline = time.monotonic() + WAIT_S
        while not stop.is_set():
            try:
                return self._replies.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"counter {self.counter}: no reply in {WAIT_S:.0f} s"
                    ) from None
        return None


def press_all(clerks: list[Clerk], presses: int, think_s: float) -> tuple[float, float]:
    """Let every clerk press ``presses`` times, all starting at once.

    Returns when the first press began and when the last reply came.
    """
    errors: list[BaseException] = []
    start = threading.Barrier(len(clerks) + 1)
    pace = Pace(think_s, threading.Event())

    def run(clerk: Clerk) -> None:
        try:
            clerk.press(presses, start, pace)
        except threading.BrokenBarrierError:
            pass  # the run was cut short before it began
        except BaseException as exc:
            errors.append(exc)
            pace.stop.set()

    threads = [
        threading.Thread(target=run, args=(clerk,), name=f"clerk-{clerk.counter}", daemon=True)
        for clerk in clerks
    ]
    for thread in threads:
        thread.start()
    try:
        try:
            start.wait(WAIT_S)
        except threading.BrokenBarrierError:
            raise BenchError("the clerks did not get ready to press") from None
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        ended = time.perf_counter()
    finally:
        start.abort()
        pace.stop.set()  # on an error, the other clerks stop pressing
    if errors:
        raise errors[0]
    return began, ended


@dataclass(frozen=True)
class PanelRun:
    """What one panel process reports of a phase."""

    presses: dict[str, list[Press]]
    """Each counter's presses, in order."""
    began: float
    ended: float


def panel_process(
    accounts: dict[str, MqttSettings],
    counters: list[str],
    directory: Path,
    phases: list[tuple[int, float]],
    barrier: Any,
    results: Any,
) -> None:
    """A process of counter panels: one panel per counter, one clerk at each.

    Real panels are machines of their own; a few processes of a few panels each keep
    the benchmark's own threads from queueing behind each other. For each phase
    (presses, mean pause) it waits at ``barrier`` with the others, presses, and puts
    a :class:`PanelRun` (or the error's text) on ``results``.
    """
    try:
        with ExitStack() as stack:
            clerks = [
                Clerk(counter, panel_link(counter, accounts, directory, stack))
                for counter in counters
            ]
            gc.freeze()  # as the roles do once started (see measure())
            for presses, think_s in phases:
                barrier.wait(START_S)
                for clerk in clerks:
                    clerk.presses.clear()
                began, ended = press_all(clerks, presses, think_s)
                results.put(PanelRun({c.counter: list(c.presses) for c in clerks}, began, ended))
    except threading.BrokenBarrierError:
        results.put(f"panels {', '.join(counters)}: another process gave up")
    except Exception as failed:  # reported to the main process, which stops the run
        results.put(f"panels {', '.join(counters)}: {failed}")


# -- the floor: a raw MQTT round trip ------------------------------------------------


def round_trips(mqtt: MqttSettings, base: str, samples: int, payload: bytes) -> list[float]:
    """Raw MQTT round trips through the broker, one at a time, in seconds.

    One paho client publishes ``payload`` (QoS 1) to ``<base>/ping``; a second one,
    subscribed to it, publishes it back to ``<base>/pong`` from its message callback,
    as the hub answers a panel; the first one's subscription to ``pong`` ends the
    round trip. That is the path of a press without the hub's work: panel → broker
    → hub → broker → display. ``samples`` are measured after as many warm-up round
    trips as the clerks make.
    """
    received: queue.Queue[float] = queue.Queue()
    subscribed = threading.Semaphore(0)
    clients: list[paho.Client] = []

    def client(name: str, topic: str, on_message: Callable[..., None]) -> paho.Client:
        made = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"bench-floor-{name}-{os.getpid()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        password = mqtt.password.get_secret_value() if mqtt.password is not None else None
        made.username_pw_set(mqtt.username, password)
        made.on_message = on_message
        made.on_subscribe = lambda *_: subscribed.release()

        def subscribe(*_: Any) -> None:
            # As the product's own connections: small messages go out at once (no Nagle).
            sock = made.socket()
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            made.subscribe(topic, qos=1)

        made.on_connect = subscribe
        clients.append(made)
        return made

    def echo(made: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        made.publish(f"{base}/pong", message.payload, qos=1)

    sender = client("pong", f"{base}/pong", lambda *_: received.put(time.perf_counter()))
    client("echo", f"{base}/ping", echo)
    try:
        for made in clients:
            made.connect(mqtt.host, mqtt.port, keepalive=15)
            made.loop_start()
        for _ in clients:
            if not subscribed.acquire(timeout=WAIT_S):
                raise BenchError("the floor's clients did not subscribe")
        warmup = WARMUP_PRESSES * COUNTERS
        times: list[float] = []
        for _ in range(warmup + samples):
            sent = time.perf_counter()
            sender.publish(f"{base}/ping", payload, qos=1)
            try:
                times.append(received.get(timeout=WAIT_S) - sent)
            except queue.Empty:
                raise BenchError("a round trip's message did not come back") from None
        return times[warmup:]
    finally:
        for made in clients:
            made.disconnect()
            made.loop_stop()


def call_round_trips(accounts: dict[str, MqttSettings], samples: int) -> list[float]:
    """The floor: raw round trips of a call-sized message through the office's broker."""
    sample = p.Call(
        ticket="A123",
        ticket_id=uuid.uuid4().hex,
        counter="20",
        counter_name="Okienko 20",
        service=SERVICES[0].code,
        called_at=datetime.now(UTC),
        recall=False,
        calls=1,
    ).encode()
    return round_trips(accounts[HUB_DEVICE_ID], f"{p.Topics(SITE).base}/bench", samples, sample)


def lobby(
    accounts: dict[str, MqttSettings],
    stack: ExitStack,
    on_call: Callable[[str, bytes], None],
    on_counter_state: Callable[[str, bytes], None],
) -> DeviceLink:
    """The lobby display's link, hearing the calls and the counters' states."""
    link = DeviceLink(
        mqtt=accounts[DISPLAY], site=SITE, device_id=DISPLAY, role="display", outbox_path=None
    )
    link.subscribe(link.topics.calls(), on_call)
    link.subscribe(link.topics.counter_state("+"), on_counter_state)
    return connect(link, stack)


def panel_groups() -> list[list[str]]:
    """The counters of each panel process."""
    return [counter_ids()[n::PANEL_PROCESSES] for n in range(PANEL_PROCESSES)]


# -- the run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """What one phase of clerks pressing measured; times in seconds."""

    latencies: list[float]
    """Press → call of each measured press."""
    sends: list[float]
    """Each measured ``DeviceLink.send`` (the outbox's synced write)."""
    elapsed: float
    """From the first press to the last reply."""
    presses: int
    """All presses, warm-up included."""

    @property
    def rate(self) -> float:
        """Presses per second over the phase."""
        return self.presses / self.elapsed


@dataclass(frozen=True)
class Figures:
    """What one run measured."""

    office: Phase
    """The clerks at their (compressed) office pace: the targets apply here."""
    capacity: Phase
    """The clerks pressing without pause: how many presses a second the hub takes (the
    latencies of this phase only measure the queue in front of the hub)."""
    floor: list[float]
    """Raw round trip of each floor sample, in seconds."""


@dataclass
class Display:
    """The lobby display: when it heard each counter's calls, and which ticket each named.

    The hub publishes a counter's calls in the order it handles its commands, and a
    clerk presses only after the previous reply, so the n-th call of a counter
    belongs to its n-th press.
    """

    calls: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    strays: list[str] = field(default_factory=list)
    """Calls at a counter that is not the benchmark's (there must be none)."""
    counter_states: threading.Event = field(default_factory=threading.Event)
    """Set once the hub's retained counter states arrive: it is subscribed and serving."""
    _heard: threading.Condition = field(default_factory=threading.Condition)
    _count: int = 0

    def __post_init__(self) -> None:
        self.calls = {counter: [] for counter in counter_ids()}

    def on_call(self, _topic: str, payload: bytes) -> None:
        """The display's subscription to ``calls`` (in its network thread)."""
        heard = time.perf_counter()
        call = p.decode(p.Call, payload)
        with self._heard:
            if call.counter not in self.calls:
                self.strays.append(f"{call.ticket} at counter {call.counter}")
                return
            self.calls[call.counter].append((heard, call.ticket_id))
            self._count += 1
            self._heard.notify_all()

    def on_counter_state(self, _topic: str, _payload: bytes) -> None:
        """The display's subscription to the counters' retained states."""
        self.counter_states.set()

    @property
    def heard(self) -> int:
        """How many calls the display has heard in all."""
        with self._heard:
            return self._count

    def wait_for(self, calls: int) -> None:
        """Wait until ``calls`` calls have been heard in all, or fail."""
        with self._heard:
            if not self._heard.wait_for(lambda: self._count >= calls, WAIT_S):
                raise BenchError(f"the display heard {self._count} of {calls} calls")

    def phase(self, runs: list[PanelRun], skip: int) -> Phase:
        """Match the presses of one phase with their calls; every ticket must agree."""
        if self.strays:
            raise BenchError(f"calls no press waited for: {', '.join(self.strays[:5])}")
        latencies: list[float] = []
        sends: list[float] = []
        count = 0
        with self._heard:
            for run in runs:
                for counter, presses in run.presses.items():
                    heard = self.calls[counter][: len(presses)]
                    del self.calls[counter][: len(presses)]
                    called = [ticket for _, ticket in heard]
                    replied = [press.ticket_id for press in presses]
                    if called != replied:
                        raise BenchError(f"counter {counter}: calls {called}, replies {replied}")
                    count += len(presses)
                    for press, (at, _) in list(zip(presses, heard, strict=True))[skip:]:
                        latencies.append(at - press.pressed)
                        sends.append(press.send_s)
        began = min(run.began for run in runs)
        ended = max(run.ended for run in runs)
        return Phase(latencies, sends, ended - began, count)


def measure(directory: Path, presses: int, think_s: float) -> Figures:
    """Run the office, the floor and both phases; stop everything, also on Ctrl+C."""
    context = multiprocessing.get_context("spawn")
    phases = [(WARMUP_PRESSES + presses, think_s), (WARMUP_PRESSES + CAPACITY_PRESSES, 0.0)]
    with ExitStack() as stack:
        broker = stack.enter_context(office_broker(directory / "broker"))
        accounts = broker.accounts
        tickets = COUNTERS * (sum(n for n, _ in phases) + 1)
        stack.enter_context(running_hub(directory / "hub", broker, tickets))
        display = Display()
        lobby(accounts, stack, display.on_call, display.on_counter_state)
        if not display.counter_states.wait(WAIT_S):
            raise BenchError("the hub published no counter state")
        # As every role does once started: full collections no longer scan what
        # start-up made, so a collection in the display is no 100 ms pause of a call.
        gc.freeze()
        # Before the panel processes start, whose start-up would disturb it.
        floor = call_round_trips(accounts, COUNTERS * presses)
        barrier = context.Barrier(PANEL_PROCESSES + 1)
        results = context.Queue()
        groups = panel_groups()
        for group in groups:
            worker = context.Process(
                target=panel_process,
                args=(accounts, group, directory / "panels", phases, barrier, results),
                daemon=True,
            )
            worker.start()
            stack.callback(worker.join, WAIT_S)
            stack.callback(worker.terminate)
        stack.callback(barrier.abort)
        measured = []
        heard = 0
        for count, think in phases:
            try:
                barrier.wait(START_S)
            except threading.BrokenBarrierError:
                raise BenchError("the panels did not get ready to press") from None
            runs = [phase_result(results, count, think) for _ in groups]
            heard += COUNTERS * count
            display.wait_for(heard)
            measured.append(display.phase(runs, WARMUP_PRESSES))
        return Figures(office=measured[0], capacity=measured[1], floor=floor)


def phase_result(results: Any, presses: int, think_s: float) -> PanelRun:
    """The next panel process's report of a phase, or :class:`BenchError`.

    A process reports once the slowest of its clerks has made ``presses`` presses with
    their random pauses (``think_s`` on average): with long pauses that alone can take
    minutes, so the wait grows with them.
    """
    try:
        run = results.get(timeout=WAIT_S * 10 + 3 * presses * think_s)
    except queue.Empty:
        raise BenchError("a panel process did not report") from None
    if isinstance(run, str):
        raise BenchError(run)
    assert isinstance(run, PanelRun)
    return run


def report(figures: Figures, presses: int, think_s: float) -> None:
    """Print the figures as text, then as one JSON line."""
    office, capacity = figures.office, figures.capacity
    p50, p99 = (ms(v) for v in percentiles(office.latencies))
    floor_p50, floor_p99 = (ms(v) for v in percentiles(figures.floor))
    send_p50, send_p99 = (ms(v) for v in percentiles(office.sends))
    ratio = p99 / floor_p99
    met = ratio < TARGET_RATIO and p99 < TARGET_P99_MS
    samples = len(office.latencies)

    def line(name: str, p50: float, p99: float, what: str) -> None:
        print(f"{name:9} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  {what}")

    line(
        "sync:",
        p50,
        p99,
        f"press → call on the display; {COUNTERS} counters × {presses} presses, "
        f"each clerk pausing {ms(think_s):.0f} ms on average ({office.rate:.0f} presses/s)",
    )
    line("floor:", floor_p50, floor_p99, f"raw MQTT QoS 1 round trip, {samples} one by one")
    line("panel:", send_p50, send_p99, "DeviceLink.send (the outbox's synced write)")
    print(
        f"capacity: {capacity.rate:.0f} presses/s with no pause at all "
        f"({COUNTERS} commands always queued at the hub)"
    )
    print(
        f"ratio: {ratio:.2f}× the floor's p99; targets p99 < {TARGET_RATIO:.0f}× the floor "
        f"and < {TARGET_P99_MS:.0f} ms: {'met' if met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "bench": "sync",
                "counters": COUNTERS,
                "presses": presses,
                "think_ms": round(ms(think_s), 1),
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "floor_p50_ms": round(floor_p50, 3),
                "floor_p99_ms": round(floor_p99, 3),
                "ratio_p99": round(ratio, 2),
                "send_p50_ms": round(send_p50, 3),
                "presses_per_s": round(office.rate, 1),
                "capacity_presses_per_s": round(capacity.rate, 1),
                "target_p99_ms": TARGET_P99_MS,
                "target_ratio": TARGET_RATIO,
                "target_met": met,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=50, help="measured presses per counter")
    parser.add_argument(
        "--think-ms",
        type=float,
        default=THINK_MS,
        help="each clerk's mean pause between presses, in ms",
    )
    args = parser.parse_args()
    if not 1 <= args.presses <= MAX_PRESSES:
        parser.error(f"--presses must be from 1 to {MAX_PRESSES}")
    if args.think_ms <= 0:
        parser.error("--think-ms must be more than 0")
    think_s = args.think_ms / 1000
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = run_in_tempdir(
        lambda tmp: measure(tmp, args.presses, think_s), "the broker, the hub and the devices"
    )
    report(figures, args.presses, think_s)


if __name__ == "__main__":
    main()
