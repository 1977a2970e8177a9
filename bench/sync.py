"""Benchmark: a clerk's ``next`` press → the lobby's ``calls`` message, 20 counters at once.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/sync.py [--presses 50]

It starts its own Mosquitto (generated configuration and accounts, in a temporary
directory, on a free port of 127.0.0.1), the hub (the service layer on a temporary
SQLite database, with its MQTT bridge) with the demo office's four services served
by 20 counters and enough waiting tickets that every press calls someone, a lobby
display subscribed to ``calls``, and 20 counter panels, each a
:class:`~poradovnik.sync_agent.client.DeviceLink` with its own account and durable
outbox. One thread per counter plays its clerk: it presses ``next`` ``--presses``
times, each time waiting for the hub's reply before pressing again, and all 20
press at once, without pause: the hub is kept busy throughout.

The latency of a press runs from just before ``DeviceLink.send`` (so it includes
the outbox's synced write, as a real press does) to the moment the display receives
the ``calls`` message of that press. Calls are matched to presses per counter, in
order, and each is checked against the ticket the hub's reply to that press named.
Each counter's first presses warm up and are not counted.

The floor, measured in the same run through the same broker, is a raw MQTT round
trip: one paho client publishes a call-sized message at QoS 1 to a topic another
paho client is subscribed to, one at a time, as many samples as measured presses.
It prints the p50 and p99 of both, the ratio of the p99s, whether the targets are
met, what the hub spent per command and the panels per ``send``, and one JSON line.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import queue
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from poradovnik.common.settings import MqttSettings, Settings, load_settings
from poradovnik.hub import demo_office
from poradovnik.hub.app import open_queue
from poradovnik.hub.broker import HUB_DEVICE_ID, local_broker
from poradovnik.hub.model import Counter
from poradovnik.sync_agent import protocol as p
from poradovnik.sync_agent.client import DeviceLink, Reply

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

CAPACITY_PRESSES = 25
"""Presses per counter in the phase without pauses."""

MAX_PRESSES = 150
"""A service has at most 999 live ticket numbers: 4 × 999 tickets cover both phases."""

SITE = "bench"
DISPLAY = "bench-display"

WAIT_S = 10.0
"""How long anything (a connection, a reply, a call) may take before the run fails."""


class BenchError(RuntimeError):
    """The run could not be measured (something did not connect, answer or arrive)."""


def counter_ids() -> list[str]:
    """The counters' ids: ``1`` … ``20``."""
    return [str(n) for n in range(1, COUNTERS + 1)]


def panel_name(counter: str) -> str:
    """The user name and device id of the panel at ``counter``."""
    return f"panel-{counter}"


def ms(seconds: float) -> float:
    """Seconds in milliseconds."""
    return seconds * 1000


def percentiles(values: list[float]) -> tuple[float, float]:
    """The p50 and p99 of ``values``."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


# -- the office: broker, hub, devices ------------------------------------------------


@contextmanager
def office_broker(directory: Path) -> Iterator[dict[str, MqttSettings]]:
    """Run a Mosquitto with accounts for the hub, the display and every counter panel.

    Yields the ``[mqtt]`` settings of each account, by user name.
    """
    roles: list[tuple[str, Any, dict[str, Any]]] = [
        (HUB_DEVICE_ID, "hub", {"device_id": HUB_DEVICE_ID}),
        (DISPLAY, "display", {"device_id": DISPLAY}),
    ]
    roles += [
        (panel_name(c), "counter", {"device_id": panel_name(c), "counters": [c]})
        for c in counter_ids()
    ]
    with local_broker(directory, SITE, roles) as broker:
        yield broker.accounts


def seed_office(settings: Settings, tickets: int) -> None:
    """Write the office into the hub's database: 4 services, 20 counters, ``tickets`` waiting.

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


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_hub(directory: Path, mqtt: MqttSettings, tickets: int) -> Iterator[None]:
    """Run ``poradovnik hub`` in its own process, as on the office's hub machine.

    The office (see :func:`seed_office`) is written first; the context is entered once
    the hub has told its (systemd) notify socket that it is ready. The hub's
    subscriptions and retained states follow; :func:`measure` waits for those.
    """
    directory.mkdir(parents=True)
    config = hub_settings_file(directory, mqtt)
    seed_office(load_settings(config), tickets)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(directory / "notify"))
    notify.settimeout(WAIT_S)
    hub = subprocess.Popen(
        [sys.executable, "-m", "poradovnik.cli", "hub", "--config", str(config)],
        env={**os.environ, "NOTIFY_SOCKET": str(directory / "notify")},
    )
    try:
        try:
            while b"READY=1" not in notify.recv(4096).split(b"\n"):
                pass
        except TimeoutError:
            raise BenchError("the hub did not get ready") from None
        yield
    finally:
        hub.terminate()
        try:
            hub.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
        notify.close()


def connect(link: DeviceLink, stack: ExitStack) -> DeviceLink:
    """Start ``link``, have ``stack`` stop it, and wait until its subscriptions stand."""
    stack.callback(link.stop)
    link.start()
    if not link.connection.subscribed.wait(WAIT_S):
        raise BenchError(f"device {link.device_id} did not connect and subscribe")
    return link


# -- press → call --------------------------------------------------------------------


@dataclass
class Press:
    """One press of ``next``: when it was pressed, and when its call reached the display."""

    index: int
    pressed: float
    called: float | None = None
    ticket_id: str | None = None
    """The ticket the ``calls`` message named."""


@dataclass
class CallClock:
    """Times each press until the display hears its call, matched per counter in order.

    A clerk waits for the reply before pressing again, and the hub publishes a
    counter's calls in the order it handles its commands, so the n-th call of a
    counter belongs to its n-th press; :meth:`check` then compares the ticket of
    each call with the ticket the hub's reply to that press named.
    """

    presses: dict[str, list[Press]] = field(default_factory=dict)
    calls: int = 0
    strays: list[str] = field(default_factory=list)
    """Calls no press was waiting for (there must be none)."""
    _waiting: dict[str, collections.deque[Press]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _heard: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._heard = threading.Condition(self._lock)
        for counter in counter_ids():
            self.presses[counter] = []
            self._waiting[counter] = collections.deque()

    def pressed(self, counter: str, index: int) -> None:
        """A clerk is about to press ``next`` at ``counter`` (its ``index``-th press)."""
        press = Press(index, time.perf_counter())
        with self._lock:
            self.presses[counter].append(press)
            self._waiting[counter].append(press)

    def on_call(self, _topic: str, payload: bytes) -> None:
        """The display's subscription to ``calls`` (in its network thread)."""
        heard = time.perf_counter()
        call = p.decode(p.Call, payload)
        with self._lock:
            waiting = self._waiting.get(call.counter)
            if not waiting:
                self.strays.append(f"{call.ticket} at counter {call.counter}")
                return
            press = waiting.popleft()
            press.called = heard
            press.ticket_id = call.ticket_id
            self.calls += 1
            self._heard.notify_all()

    def wait_for(self, calls: int, timeout_s: float) -> bool:
        """Wait until the display has heard ``calls`` calls in all."""
        with self._heard:
            return self._heard.wait_for(lambda: self.calls >= calls, timeout_s)

    def latencies(self, skip: int) -> list[float]:
        """Press → call of every press but each counter's first ``skip``, in seconds."""
        with self._lock:
            return [
                press.called - press.pressed
                for presses in self.presses.values()
                for press in presses
                if press.index >= skip and press.called is not None
            ]

    def check(self, replied: dict[str, list[str]]) -> None:
        """Raise :class:`BenchError` unless every call named the ticket its reply named."""
        if self.strays:
            raise BenchError(f"calls no press waited for: {', '.join(self.strays[:5])}")
        for counter, presses in self.presses.items():
            called = [press.ticket_id for press in presses]
            if called != replied[counter]:
                raise BenchError(f"counter {counter}: calls {called}, replies {replied[counter]}")


@dataclass
class Pace:
    """How the clerks press: ``think_s`` is each clerk's mean pause between presses.

    The pauses are random (exponential), so the 20 counters press independently of each
    other and now and then at the same moment; 0 means no pause at all (each clerk
    presses again as soon as the hub answers).
    """

    think_s: float
    stop: threading.Event
    _rng: random.Random = field(default_factory=lambda: random.Random(42))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pause(self) -> float:
        """A clerk's next pause, in seconds."""
        with self._lock:
            return self._rng.expovariate(1 / self.think_s)


@dataclass
class Clerk:
    """One counter's clerk: presses ``next`` on its panel, each after the previous reply."""

    counter: str
    link: DeviceLink
    replied: list[str] = field(default_factory=list)
    """The ticket each reply named, in order."""
    sends: list[float] = field(default_factory=list)
    """How long each ``send`` took (the outbox's synced write), in seconds."""
    _replies: queue.Queue[Reply] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.link.on_reply(lambda _command, reply: self._replies.put(reply))

    def press(self, presses: int, clock: CallClock, start: threading.Barrier, pace: Pace) -> None:
        """Press ``presses`` times once everyone is at ``start``, at ``pace``.

        Gives up when ``pace.stop`` is set.
        """
        topic = self.link.topics.counter_cmd(self.counter)
        start.wait()
        for index in range(presses):
            if index and pace.think_s and pace.stop.wait(pace.pause()):
                return
            command = p.CounterCommand(msg_id=uuid.uuid4().hex, action="next")
            clock.pressed(self.counter, index)
            began = time.perf_counter()
            self.link.send(topic, command)
            self.sends.append(time.perf_counter() - began)
            reply = self._reply(pace.stop)
            if reply is None:
                return
            if not isinstance(reply, p.CommandReply) or reply.ticket is None:
                raise BenchError(f"counter {self.counter}: the hub answered {reply!r}")
            self.replied.append(reply.ticket.ticket_id)

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


def press_all(clerks: list[Clerk], presses: int, clock: CallClock, pace: Pace) -> float:
    """Let every clerk press ``presses`` times, all starting at once; return how long it took."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(clerks) + 1)

    def run(clerk: Clerk) -> None:
        try:
            clerk.press(presses, clock, start, pace)
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
            while thread.is_alive():  # short joins: Ctrl+C gets through
                thread.join(timeout=0.2)
        elapsed = time.perf_counter() - began
    finally:
        start.abort()
        pace.stop.set()  # on Ctrl+C or an error, the other clerks stop pressing
        for thread in threads:
            thread.join(timeout=WAIT_S)
    if errors:
        raise errors[0]
    expected = len(clerks) * presses
    if not clock.wait_for(expected, WAIT_S):
        raise BenchError(f"the display heard {clock.calls} of {expected} calls")
    return elapsed


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
    """Raw publish → receipt of each floor sample, in seconds."""


@dataclass
class Display:
    """The lobby display: hands each call to the :class:`CallClock` of the running phase."""

    clock: CallClock = field(default_factory=CallClock)
    counter_states: threading.Event = field(default_factory=threading.Event)
    """Set once the hub's retained counter states arrive: it is subscribed and serving."""

    def on_call(self, topic: str, payload: bytes) -> None:
        """The display's subscription to ``calls``."""
        self.clock.on_call(topic, payload)

    def on_counter_state(self, _topic: str, _payload: bytes) -> None:
        """The display's subscription to the counters' retained states."""
        self.counter_states.set()


def run_phase(clerks: list[Clerk], display: Display, presses: int, think_s: float) -> Phase:
    """Let the clerks press ``presses`` (after warm-up) each at ``think_s`` pace."""
    clock = display.clock = CallClock()
    for clerk in clerks:
        clerk.replied.clear()
        clerk.sends.clear()
    all_presses = WARMUP_PRESSES + presses
    elapsed = press_all(clerks, all_presses, clock, Pace(think_s, threading.Event()))
    clock.check({clerk.counter: clerk.replied for clerk in clerks})
    return Phase(
        latencies=clock.latencies(skip=WARMUP_PRESSES),
        sends=[t for clerk in clerks for t in clerk.sends[WARMUP_PRESSES:]],
        elapsed=elapsed,
        presses=COUNTERS * all_presses,
    )


def measure(directory: Path, presses: int, think_s: float) -> Figures:
    """Run the office, the floor and both phases; stop everything, also on Ctrl+C."""
    with ExitStack() as stack:
        accounts = stack.enter_context(office_broker(directory / "broker"))
        tickets = COUNTERS * (2 * WARMUP_PRESSES + presses + CAPACITY_PRESSES + 1)
        stack.enter_context(running_hub(directory / "hub", accounts[HUB_DEVICE_ID], tickets))
        display = Display()
        link = DeviceLink(
            mqtt=accounts[DISPLAY], site=SITE, device_id=DISPLAY, role="display", outbox_path=None
        )
        link.subscribe(link.topics.calls(), display.on_call)
        link.subscribe(link.topics.counter_state("+"), display.on_counter_state)
        connect(link, stack)
        if not display.counter_states.wait(WAIT_S):
            raise BenchError("the hub published no counter state")
        clerks = []
        for counter in counter_ids():
            name = panel_name(counter)
            panel = DeviceLink(
                mqtt=accounts[name],
                site=SITE,
                device_id=name,
                role="counter",
                outbox_path=directory / "panels" / f"{name}.outbox.sqlite3",
            )
            clerks.append(Clerk(counter, connect(panel, stack)))
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
        floor = round_trips(
            accounts[HUB_DEVICE_ID],
            f"{p.Topics(SITE).base}/bench",
            COUNTERS * presses,
            sample,
        )
        office = run_phase(clerks, display, presses, think_s)
        capacity = run_phase(clerks, display, CAPACITY_PRESSES, 0.0)
        return Figures(office=office, capacity=capacity, floor=floor)


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
    try:
        with tempfile.TemporaryDirectory(prefix="poradovnik-bench-") as tmp:
            figures = measure(Path(tmp), args.presses, think_s)
    except KeyboardInterrupt:
        print("interrupted; the broker, the hub and the devices are stopped", file=sys.stderr)
        sys.exit(130)
    except BenchError as failed:
        print(f"the run failed: {failed}", file=sys.stderr)
        sys.exit(1)
    report(figures, args.presses, think_s)


if __name__ == "__main__":
    main()
