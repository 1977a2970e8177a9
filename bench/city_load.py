"""Benchmark: a city of 20 branches × 50 devices: history into the city, its lag, the city's
portal, and a branch's press → call beside a single office's.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/city_load.py [--branches 20] [--real 3] [--seconds 120]
        [--think-ms 10000] [--presses 50] [--press-think-ms 1000] [--live 500]
        [--portal-seconds 20] [--database-url postgresql+psycopg://…]

The city is real: its Mosquitto and ``poradovnik city`` (the web pages, and the consumer
in its own process) on PostgreSQL (``--database-url``, else a throwaway cluster made
for the run with ``initdb``). Each branch has 50 devices: 20 counter panels, 20 kiosks
and 10 displays.
``--real`` branches are real offices, each its own Mosquitto bridged to the city's (the
configuration ``[uplink]`` makes) and ``poradovnik hub`` on its own SQLite database,
with the demo office's four services and 20 counters; this machine (2 cores) holds 3.
Their devices are :class:`~sync_agent.link.DeviceLink` s with their own accounts in a
few processes: the clerks press ``next`` and the citizens take tickets, each pausing a
random time (exponential, ``--think-ms`` on average) after every answer; the displays
hear the calls and queues. The other branches are simulated at a real branch's pace: a
process keeps a hub's queue for each on its own SQLite database, where simulated people
take tickets and call them as often as the real branches' devices do, and the hub's own
uplink sends each one's history straight to the city's broker under the branch's own
account, as its bridge would carry it.

Measured over ``--seconds`` at full load (every branch working, the portal's pages
open from the first second):

- **events/s into the city**: the branches' transitions in the window that the city
  stored, per second of the window;
- **lag**: from a transition at a branch (its row's ``at``) to the city's commit of
  it (``received_at``), one clock (one machine): p50 and p99;
- **open pages**: ``--live`` portal pages open in browsers (a separate process,
  keep-alive connections), each loading ``/`` once and then fetching ``/fragment`` every
  :data:`city.web.portal.REFRESH_S` seconds, as ``city.js`` does: requests per second,
  p50 and p99;
- **branch press → call**: ``bench/sync.py``'s phase (20 panels in four processes) on
  the first real branch, from the window's start, against the same phase on a single
  office with no city (the same hub, devices and pace), measured in the same run
  first: the floor, and the ratio of the p99s. In both, each clerk presses
  ``--presses`` times (after :data:`sync.WARMUP_PRESSES` not counted), pausing
  ``--press-think-ms`` on average: 1,000 presses by default behind each p99, at some
  20 presses a second, ten times the other branches' clerks. The phase must end within
  the window, or the target is not met.

In a city every branch's hub runs on a Raspberry Pi of its own; here one machine holds
them all. So while the city is under load the measured office keeps a normal priority
(nice 0): its Mosquitto, its ``poradovnik hub``, the processes of the measured clerks'
panels and the benchmark's process hearing the calls. Everything else (the city's
broker, ``poradovnik city``, the PostgreSQL the run made, the other branches, the
simulated ones, the portal's pages, the measured office's own kiosks and displays) runs
at the lowest (nice 19). The office gets a CPU whenever it needs one, as on its Pi, and
the rest of the city uses every CPU the office leaves (it is idle most of the time); no
process is bound to a CPU. The single office runs the same way (it at 0, its kiosks and
displays at 19), so both p99s are measured on equal terms. Without the privilege to
lower a niceness again (root or ``CAP_SYS_NICE``) nothing is reprioritised and the
output says so; it prints each part's niceness. The disk stays shared: the press's
synced writes (the panel's outbox, the hub's commit) queue behind the other branches'
and devices' own.

Then the load stops, everything runs at a normal priority again and the city catches
up (its acks reach every branch's last row), the **portal's capacity** is measured
apart (``--live`` clients each asking for ``/`` again as soon as it is answered, for
``--portal-seconds``: requests per second, p50, p99), and its ``branch_events`` are
compared row by row with each real branch's ``events`` and each simulated branch's
sent rows: nothing may be lost or stored twice. The size of a
stored row comes from ``pg_total_relation_size``. Targets: lag p99 ≤ 2 s, no row lost
or doubled, the branch's press → call p99 within 1.5× the single office's. It prints
the figures as text and one JSON line; exit status 0 when the targets are met, 2 when
not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import queue
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w
from counter import sync_phase
from harness import (
    BenchError,
    HttpConnection,
    ms,
    percentiles,
    run_in_tempdir,
    run_load_process,
)
from pydantic import SecretStr
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool
from sync import (
    COUNTERS,
    MAX_PRESSES,
    SITE,
    START_S,
    WAIT_S,
    WARMUP_PRESSES,
    Display,
    counter_ids,
    lobby,
    office_logins,
    running_hub,
    seed_office,
    start_hub,
)

from city.demo import (
    city_database,
    city_settings,
    consumer_account,
    register_branches,
    start_city_broker,
    uplink_section,
    wait_for_web,
)
from city.store import CityStore, branch_username
from city.tables import BranchEventRow
from city.verify import Row, branch_history, city_history, history_differences
from city.web.portal import REFRESH_S
from common.settings import DataSettings, MqttSettings, Settings, SiteSettings, load_settings
from hub.app import open_queue
from hub.broker import Bridge, LocalBroker, free_port, local_broker
from hub.demo import role_process
from hub.demo_office import SERVICES
from hub.store import sqlite_url
from hub.uplink import Uplink
from sync_agent import protocol as p
from sync_agent.city_protocol import (
    EVERY_BRANCH,
    HistoryAck,
    decode_city,
    site_of,
)
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.link import DeviceLink, Reply

BRANCHES = 20
REAL = 3
"""Real branches (broker + hub) this 2-core machine holds beside the city."""

KIOSKS = 20
DISPLAYS = 10
"""A branch's displays, its lobby display (``bench/sync.py``'s) among them."""

THINK_MS = 10_000.0
"""Each clerk's and citizen's mean pause after an answer: 20 counters and 20 kiosks of a
branch then make about 6 transitions a second, some 30 times a busy branch's (a clerk
serves a citizen every few minutes)."""

LIVE = 500
"""Portal pages open at once while the lag is measured (each refreshing as ``city.js``
does), then clients asking without pause to measure the portal's capacity."""

PORTAL_S = 20.0
"""How long the portal's capacity is measured, once the load is over."""

PRESSES = 50
"""Measured presses per clerk in each press → call phase (the single office's and the
branch's): 20 clerks make 1,000, so that a p99 is not one of a few slowest presses."""

PRESS_THINK_MS = 1_000.0
"""The measured clerks' mean pause after each answer, in both phases: 50 presses (and
the warm-up) fit in the full-load window with room to spare."""

SECONDS = 120.0
"""The full-load window: the branch's measured presses run inside it, from its start."""

TARGET_LAG_P99_S = 2.0
TARGET_BRANCH_RATIO = 1.5
"""A branch's press → call p99 under the city's full load, against a single office's."""

CATCH_UP_S = 120.0
"""How long the city may take to hold every row once the load stops."""


def site_name(index: int, real: int) -> str:
    """The site of branch ``index`` (0-based): the first is ``bench/sync.py``'s site."""
    if index == 0:
        return SITE
    return f"real-{index + 1}" if index < real else f"sim-{index + 1:02d}"


def branch_logins(site: str) -> list[tuple[str, Any, dict[str, Any]]]:
    """A branch's broker accounts: ``bench/sync.py``'s (hub, lobby, 20 panels), 20 kiosks and
    9 more displays."""
    logins = office_logins()
    logins += [(f"kiosk-{n}", "kiosk", {"device_id": f"kiosk-{n}"}) for n in range(1, KIOSKS + 1)]
    logins += [
        (f"display-{n}", "display", {"device_id": f"display-{n}"}) for n in range(2, DISPLAYS + 1)
    ]
    return logins


# -- the measured branch's priority, as on a Pi of its own -----------------------------


OFFICE_NICE = 0
"""The measured office's niceness while the city is under load: a normal priority."""

REST_NICE = 19
"""Everything else's niceness meanwhile: the lowest priority."""


@dataclass(frozen=True)
class Shares:
    """How the measured office and everything else share the machine's CPUs.

    In a city every branch's hub runs on a Raspberry Pi of its own, with its Mosquitto;
    here one machine holds them all. So while the city is under load the measured office
    (the branch, and the single office it is compared with) keeps a normal priority
    (nice :data:`OFFICE_NICE`): its Mosquitto, its ``poradovnik hub``, the processes of
    its measured clerks' panels and the benchmark's process hearing the calls (the
    lobby display the latency is timed on). Everything else (the city's broker,
    ``poradovnik city``, PostgreSQL, the other branches, the simulated ones, the portal's
    pages, the measured office's kiosks and displays) runs at the lowest (nice
    :data:`REST_NICE`). The office gets a CPU whenever it needs one, as on its Pi, and
    the rest uses every CPU it leaves (an office is idle most of the time). No process
    is bound to a CPU. Without the privilege to lower a niceness (root or
    ``CAP_SYS_NICE``), or without ``setpriority``, nothing is reprioritised;
    ``described`` says why.
    """

    office: int | None
    """The measured office's niceness under load (``None``: not reprioritised)."""
    rest: int | None
    """Everything else's niceness under load (``None``: not reprioritised)."""
    described: str

    @classmethod
    def split(cls) -> Shares:
        """Normal priority for the measured office and the lowest for the rest, if this
        process may lower a niceness again."""
        if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
            return cls(None, None, "not reprioritised: this system has no setpriority")
        if not may_lower_niceness():
            nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            return cls(
                None,
                None,
                f"not reprioritised: lowering a niceness needs root or CAP_SYS_NICE; "
                f"everything at nice {nice}",
            )
        return cls(
            OFFICE_NICE,
            REST_NICE,
            f"the measured office (its Mosquitto, hub, clerks' panels and the call "
            f"listener) at nice {OFFICE_NICE}, as on its own Pi; everything else at nice "
            f"{REST_NICE}, on whatever CPU the office leaves; every process on every CPU; "
            f"the catch-up and the portal's capacity at nice {OFFICE_NICE}",
        )

    @contextmanager
    def on(self, nice: int | None) -> Iterator[None]:
        """Run the calling thread at niceness ``nice`` (``None``: as it is) within the
        block.

        The processes and threads it starts meanwhile keep it (Linux's niceness is the
        thread's, and a child inherits its creator's).
        """
        if nice is None or self.office is None:
            yield
            return
        thread = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, nice)
        try:
            yield
        finally:
            os.setpriority(os.PRIO_PROCESS, thread, before)

    def release(self, roots: Iterable[int]) -> None:
        """Every process started from ``roots`` (every thread of each) at a normal
        priority again."""
        if self.office is None:
            return
        for pid in descendants(roots):
            with suppress(OSError):  # gone meanwhile
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with suppress(OSError):
                        os.setpriority(os.PRIO_PROCESS, int(task.name), OFFICE_NICE)


def may_lower_niceness() -> bool:
    """Whether this process may lower a thread's niceness: tried on a thread of its own
    (niceness is per thread), one up and back down, the way back needing the privilege."""
    allowed: list[bool] = []

    def probe() -> None:
        thread = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, thread)
        try:
            os.setpriority(os.PRIO_PROCESS, thread, before + 1 if before < 19 else before - 1)
            os.setpriority(os.PRIO_PROCESS, thread, before)
        except PermissionError:
            allowed.append(False)
        else:
            allowed.append(True)

    prober = threading.Thread(target=probe, name="niceness-probe")
    prober.start()
    prober.join()
    return allowed == [True]


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` and every process they started (and those started), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (command) state ppid …": the command may hold spaces and parentheses.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += children.get(pid, [])
    return found


def postmaster(url: str) -> list[int]:
    """The city's PostgreSQL server process on this machine (the parent of a session's
    backend), or none."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            try:
                stat = Path(f"/proc/{backend}/stat").read_text()
            except OSError:  # a server elsewhere
                return []
    finally:
        engine.dispose()
    return [int(stat.rsplit(")", 1)[1].split()[1])]


# -- the devices of a branch -----------------------------------------------------------


@dataclass
class Worker:
    """A branch's simulated people on their devices, until ``stop``: what they did."""

    tickets: int = 0
    presses: int = 0
    calls_heard: int = 0
    errors: list[str] = field(default_factory=list)


def office_worker(
    accounts: dict[str, MqttSettings],
    site: str,
    clerks: bool,
    think_s: float,
    directory: Path,
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    """A process of one branch's devices: 20 kiosks, 9 displays and (with ``clerks``) the
    20 counter panels, each person pausing ``think_s`` on average after every answer.

    Says so on ``ready`` once every device is connected, runs until ``stop`` is set,
    then puts a :class:`Worker` on ``results``.
    """
    worker = Worker()
    lock = threading.Lock()
    rng = random.Random()
    answers: dict[str, threading.Event] = {}

    def answered(command: p.Request, _reply: Reply) -> None:
        event = answers.pop(command.msg_id, None)
        if event is not None:
            event.set()

    def act(link: DeviceLink, topic: str, command: p.Request) -> bool:
        done = answers[command.msg_id] = threading.Event()
        link.send(topic, command)
        return done.wait(WAIT_S)

    def heard(_topic: str, _payload: bytes) -> None:
        with lock:
            worker.calls_heard += 1

    def person(link: DeviceLink, make: Any, topic: str, counted: str) -> None:
        while not stop.wait(rng.expovariate(1 / think_s)):
            if not act(link, topic, make()):
                worker.errors.append(f"{site} {link.device_id}: no answer in {WAIT_S:.0f} s")
                return
            with lock:
                setattr(worker, counted, getattr(worker, counted) + 1)

    with ExitStack() as stack:
        threads = []
        links: dict[str, DeviceLink] = {}

        def device(name: str, role: str, outbox: bool) -> DeviceLink:
            link = DeviceLink(
                mqtt=accounts[name],
                site=site,
                device_id=name,
                role=role,
                outbox_path=directory / f"{site}-{name}.sqlite3" if outbox else None,
            )
            link.on_reply(answered)
            stack.callback(link.stop)
            link.start()
            links[name] = link
            return link

        for n in range(2, DISPLAYS + 1):
            display = device(f"display-{n}", "display", False)
            display.subscribe(display.topics.calls(), heard)
            display.subscribe(display.topics.queue(p.ANY), lambda _t, _p: None)
        for n in range(1, KIOSKS + 1):
            kiosk = device(f"kiosk-{n}", "kiosk", True)
            service = SERVICES[n % len(SERVICES)].code
            threads.append(
                threading.Thread(
                    target=person,
                    args=(
                        kiosk,
                        lambda service=service: p.IssueRequest(
                            msg_id=uuid.uuid4().hex, service=service
                        ),
                        kiosk.topics.kiosk_issue(kiosk.device_id),
                        "tickets",
                    ),
                    daemon=True,
                )
            )
        if clerks:
            for counter in counter_ids():
                panel = device(f"panel-{counter}", "counter", True)
                threads.append(
                    threading.Thread(
                        target=person,
                        args=(
                            panel,
                            lambda: p.CounterCommand(msg_id=uuid.uuid4().hex, action="next"),
                            panel.topics.counter_cmd(counter),
                            "presses",
                        ),
                        daemon=True,
                    )
                )
        for name, link in links.items():
            if not link.connection.subscribed.wait(WAIT_S):
                worker.errors.append(f"{site} {name} did not connect")
        ready.put(site)
        for thread in threads:
            thread.start()
        stop.wait()
        for thread in threads:
            thread.join(WAIT_S * 2)
    results.put(worker)


# -- the simulated branches ------------------------------------------------------------


def simulated_branches(
    directory: Path,
    accounts: dict[str, MqttSettings],
    think_s: float,
    done: Any,
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    """A process of simulated branches, each at the pace of a real one, until ``stop``.

    Each is a hub's queue on its own SQLite database (``bench/sync.py``'s office) and
    the hub's real :class:`~hub.uplink.Uplink`, connected straight to the city's broker
    with the branch's account, as its bridge would carry it. One thread per branch plays
    its 20 citizens and 20 clerks: a ticket or a ``next`` at a random counter, as often
    as 20 kiosks and 20 counters pausing ``think_s`` on average would. At ``stop`` the
    people stop and a :class:`Worker` goes on ``results``; the uplinks go on sending
    until ``done``, as a branch's hub goes on after its office closes.
    """
    worker = Worker()
    rng = random.Random()
    with ExitStack() as stack:
        queues = {}
        for site, mqtt in accounts.items():
            settings = Settings(
                role="hub", site=SiteSettings(id=site), data=DataSettings(dir=directory / site)
            )
            seed_office(settings, COUNTERS * 2, ())
            queue_ = open_queue(settings)
            stack.callback(queue_.store.close)
            for counter in counter_ids():
                queue_.counter_action(counter, "resume")
            uplink = Uplink(queue_.store, site=site, mqtt=mqtt)
            queue_.subscribe(uplink.changed)
            uplink.start()
            stack.callback(uplink.stop)
            queues[site] = (queue_, uplink)
        for site, (_, uplink) in queues.items():
            if not uplink.connection.connected.wait(WAIT_S):
                worker.errors.append(f"simulated branch {site} could not connect")
        ready.put("simulated")
        lock = threading.Lock()

        def people(queue_: Any) -> None:
            # 20 kiosks and 20 counters, each acting every think_s on average.
            while not stop.wait(rng.expovariate((KIOSKS + COUNTERS) / think_s)):
                try:
                    if rng.random() < KIOSKS / (KIOSKS + COUNTERS):
                        queue_.issue(SERVICES[rng.randrange(len(SERVICES))].code)
                        counted = "tickets"
                    else:
                        queue_.counter_action(rng.choice(counter_ids()), "next")
                        counted = "presses"
                except Exception as failed:  # a refusal would be a bug of the benchmark
                    worker.errors.append(f"{failed}")
                    return
                with lock:
                    setattr(worker, counted, getattr(worker, counted) + 1)

        threads = [
            threading.Thread(target=people, args=(queue_,), daemon=True)
            for queue_, _ in queues.values()
        ]
        for thread in threads:
            thread.start()
        stop.wait()
        for thread in threads:
            thread.join(WAIT_S)
        results.put(worker)
        done.wait()


# -- the city's portal under load --------------------------------------------------------


def client_main(args: argparse.Namespace) -> None:
    """The portal's load process: ``--live`` clients on ``/`` for ``--seconds``.

    With ``--pace-s`` 0 each client asks again as soon as it is answered (the portal's
    capacity); above 0 each is an open page as a browser keeps it: it loads ``/`` at a
    random moment of the first ``--pace-s``, then fetches ``/fragment`` every
    ``--pace-s``, as ``city.js`` does. With ``--ready-file`` it makes that file once
    its connections are open, as its ``--seconds`` begin.
    """

    async def run() -> dict[str, Any]:
        connections = [await HttpConnection.open(args.port) for _ in range(args.live)]
        if args.ready_file:
            Path(args.ready_file).touch()
        latencies: list[float] = []
        failures = 0
        began = time.perf_counter()
        deadline = began + args.seconds

        async def ask(index: int, path: str) -> None:
            """One request on client ``index``'s connection, opened again (as a browser
            does) if the server closed it while it was idle."""
            nonlocal failures
            asked = time.perf_counter()
            try:
                status = await connections[index].get(path)
            except (asyncio.IncompleteReadError, ConnectionError):
                connections[index].close()
                connections[index] = await HttpConnection.open(args.port)
                status = await connections[index].get(path)
            if status != 200:
                failures += 1
            latencies.append(time.perf_counter() - asked)

        async def poll(index: int) -> None:
            while time.perf_counter() < deadline:
                await ask(index, "/")

        async def page(index: int) -> None:
            due = began + random.uniform(0, args.pace_s)
            path = "/"
            while due < deadline:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await ask(index, path)
                path = "/fragment"
                due += args.pace_s

        client = page if args.pace_s > 0 else poll
        await asyncio.gather(*(client(index) for index in range(len(connections))))
        elapsed = time.perf_counter() - began
        for connection in connections:
            connection.close()
        return {"latencies": latencies, "elapsed": elapsed, "failures": failures}

    print(json.dumps(asyncio.run(run())))


@dataclass(frozen=True)
class Portal:
    """What the portal's load process measured: requests, their latencies, failures."""

    clients: int
    latencies: list[float]
    elapsed: float
    failures: int

    @classmethod
    def of(cls, clients: int, figures: dict[str, Any]) -> Portal:
        """From the load process's JSON (empty: it did not report)."""
        return cls(
            clients,
            figures.get("latencies", []),
            figures.get("elapsed", 0.0),
            figures.get("failures", 0) if figures else clients,
        )

    @property
    def rps(self) -> float:
        """Requests answered per second."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def p50_p99_ms(self) -> tuple[float, float]:
        """The latencies' p50 and p99 in milliseconds (0 with fewer than two)."""
        if len(self.latencies) < 2:
            return 0.0, 0.0
        p50, p99 = percentiles(self.latencies)
        return ms(p50), ms(p99)


# -- the run ---------------------------------------------------------------------------


@dataclass
class Figures:
    """What one run measured."""

    floor: list[float]
    """Press → call on the single office, in seconds."""
    branch: list[float]
    """Press → call on the first real branch under the city's load."""
    pressed_s: float
    """From the window's start to the branch's last measured call: within ``--seconds``
    the whole phase ran at full load."""
    shares: Shares
    """The measured office's priority under load, and the rest's."""
    lags: list[float]
    """``received_at - at`` of each row stored in the window."""
    real_lags: list[float]
    """The lags of the real branches' rows alone (they cross a bridge)."""
    events_per_s: float
    pages: Portal
    """The ``--live`` open pages refreshing as ``city.js`` does, during the window."""
    portal: Portal
    """The ``--live`` clients asking without pause, after the window: the capacity."""
    rows: int
    lost: list[str]
    bytes_per_row: float
    branches: int
    real: int
    actions: int
    """Tickets taken and presses made at every branch in the window."""
    span: float
    """The window's length, in seconds."""
    catch_up_s: float | None
    """How long the city took to hold every row once the load stopped (``None``: not
    within :data:`CATCH_UP_S`)."""


@contextmanager
def branch_office(
    directory: Path, site: str, uplink: dict[str, Any], tickets: int
) -> Iterator[LocalBroker]:
    """A real branch: its broker bridged to the city (``uplink``: its ``[uplink]``) and
    ``poradovnik hub`` on a new database with ``bench/sync.py``'s office and ``tickets``
    waiting."""
    directory.mkdir(parents=True)
    bridge = Bridge(
        site=site,
        host=uplink["host"],
        port=uplink["port"],
        username=uplink["username"],
        password=SecretStr(uplink["password"]),
        tls=uplink["tls"],
    )
    logins = branch_logins(site)
    with local_broker(directory / "broker", site, logins, bridge=bridge) as broker:
        hub = broker.accounts["hub"]
        password = hub.password.get_secret_value() if hub.password is not None else ""
        config = directory / "hub.toml"
        settings: dict[str, Any] = {
            "role": "hub",
            "site": {"id": site},
            "data": {"dir": str(directory)},
            "mqtt": {
                "host": hub.host,
                "port": hub.port,
                "username": hub.username,
                "password": password,
            },
            "web": {"port": free_port()},
            "logging": {"level": "WARNING"},
            "uplink": uplink,
        }
        config.write_text(tomli_w.dumps(settings))
        seed_office(load_settings(config), tickets, broker.logins)
        process = start_hub(config, directory / "notify")
        try:
            yield broker
        finally:
            process.stop()


class Load:
    """The load processes of a phase: they start, say they are ready, run until stopped,
    then report (a :class:`Worker`, the simulated rows, or an error's text)."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.ready = context.Queue()
        self.stop = context.Event()
        self.done = context.Event()
        """Set when the run is over: the simulated branches' uplinks may stop."""
        self.results = context.Queue()
        self.processes: list[Any] = []

    def start(self, target: Any, *args: Any) -> None:
        """Start ``target(*args, ready, stop, results)`` in a process of its own."""
        process = self.context.Process(
            target=target, args=(*args, self.ready, self.stop, self.results), daemon=True
        )
        process.start()
        self.processes.append(process)

    def offices(self, offices: dict[str, LocalBroker], think_s: float, directory: Path) -> None:
        """A device process per office (the first office's clerks press in ``sync_phase``)."""
        for index, (site, broker) in enumerate(offices.items()):
            self.start(office_worker, broker.accounts, site, index > 0, think_s, directory)

    def wait_ready(self) -> None:
        """Wait until every load process has its devices or connections up."""
        for _ in self.processes:
            try:
                self.ready.get(timeout=START_S)
            except queue.Empty:
                raise BenchError("a load process did not get ready") from None

    def finish(self) -> list[Any]:
        """Stop the load; every process's report."""
        self.stop.set()
        reports = []
        for _ in self.processes:
            try:
                report = self.results.get(timeout=WAIT_S * 4)
            except queue.Empty:
                raise BenchError("a load process did not report") from None
            if isinstance(report, str):
                raise BenchError(report)
            if isinstance(report, Worker) and report.errors:
                raise BenchError("; ".join(report.errors[:3]))
            reports.append(report)
        return reports

    def close(self) -> None:
        """End every load process."""
        self.done.set()
        for process in self.processes:
            process.join(WAIT_S)
            process.terminate()


def floor_phase(context: Any, directory: Path, pace: Paces, shares: Shares) -> list[float]:
    """``bench/sync.py``'s press → call on a single office with no city, its kiosks and
    displays working as a branch's do: the floor. The office has the branch's priority
    (its broker, hub, panels and call listener at :attr:`Shares.office`, its kiosks and
    displays at :attr:`Shares.rest`)."""
    with ExitStack() as stack:
        with shares.on(shares.office):
            broker = stack.enter_context(
                local_broker(directory / "broker", SITE, branch_logins(SITE))
            )
            stack.enter_context(running_hub(directory / "hub", broker, tickets(pace.presses)))
            display = Display()
            lobby(broker.accounts, stack, display.on_call, display.on_counter_state)
        if not display.counter_states.wait(WAIT_S):
            raise BenchError("the office's hub published no counter state")
        load = Load(context)
        stack.callback(load.close)
        load.offices({SITE: broker}, pace.think_s, directory)
        load.wait_ready()
        try:
            with shares.on(shares.office):
                measured = sync_phase(
                    context, broker.accounts, directory, pace.presses, pace.press_think_s, display
                )
        finally:
            load.finish()
        return measured.latencies


@dataclass(frozen=True)
class Paces:
    """How often everyone acts."""

    think_s: float
    """Every person's mean pause after an answer, but the measured clerks'."""
    presses: int
    """Each measured clerk's presses in a press → call phase, the warm-up's included."""
    press_think_s: float
    """The measured clerks' mean pause after an answer."""


def tickets(presses: int) -> int:
    """Waiting tickets that keep every press calling someone, the kiosks' aside."""
    return COUNTERS * (presses + 10)


class Acks:
    """The city's acks of every branch, heard on the city's broker."""

    def __init__(self, mqtt: MqttSettings) -> None:
        self.seqs: dict[str, int] = {}
        self._changed = threading.Condition()
        self.connection = MqttConnection(mqtt=mqtt, client_id="bench-acks")
        self.connection.subscribe(EVERY_BRANCH.ack, self._on_ack)

    def _on_ack(self, message: Inbound) -> None:
        if message.payload:
            ack = decode_city(HistoryAck, message.payload)
            with self._changed:
                self.seqs[site_of(message.topic)] = ack.seq
                self._changed.notify_all()

    def wait(self, wanted: dict[str, int], timeout: float) -> float | None:
        """Wait until the city acks at least ``wanted[site]`` of every site; how long it
        took, or ``None`` if it did not within ``timeout`` (the comparison then shows what
        is missing)."""
        began = time.monotonic()
        with self._changed:
            if self._changed.wait_for(
                lambda: all(self.seqs.get(s, 0) >= n for s, n in wanted.items()), timeout
            ):
                return time.monotonic() - began
        return None


@dataclass(frozen=True)
class City:
    """The running city: its database, its settings and each branch's broker password."""

    url: str
    settings: dict[str, Any]
    passwords: dict[str, str]

    def account(self, site: str) -> MqttSettings:
        """Branch ``site``'s account on the city's broker."""
        return consumer_account(self.settings).model_copy(
            update={"username": branch_username(site), "password": SecretStr(self.passwords[site])}
        )


def start_city(
    directory: Path, database_url: str | None, sites: list[str], stack: ExitStack
) -> City:
    """The city's database, broker and ``poradovnik city`` with ``sites`` registered; all
    stopped by ``stack``."""
    url = stack.enter_context(city_database(database_url))
    store = CityStore(url)
    stack.callback(store.close)
    store.upgrade()
    passwords = register_branches(store, [(site, site, f"{site} 1", None) for site in sites])
    settings = city_settings(directory, url, "WARNING")
    start_city_broker(settings, store, stack)
    stack.enter_context(role_process("city", "city", settings, directory / "city.toml"))
    wait_for_web(settings["city"]["web_port"], WAIT_S * 2)
    return City(url, settings, passwords)


def portal_load(
    port: int, clients: int, seconds: float, pace_s: float, ready: Path | None = None
) -> tuple[threading.Thread, dict[str, Any]]:
    """Start the portal's load process (``clients`` for ``seconds``, see
    :func:`client_main`) in a thread; the thread and where its figures go. With
    ``ready``, return once the process has its connections open and its time runs."""
    figures: dict[str, Any] = {}
    flags = ["--port", str(port), "--live", str(clients), "--seconds", str(seconds)]
    flags += ["--pace-s", str(pace_s)]
    if ready is not None:
        flags += ["--ready-file", str(ready)]
    thread = threading.Thread(
        target=lambda: figures.update(run_load_process(__file__, flags, seconds + START_S * 2)),
        daemon=True,
    )
    thread.start()
    if ready is not None:
        deadline = time.monotonic() + START_S
        while not ready.exists():
            if not thread.is_alive() or time.monotonic() > deadline:
                raise BenchError("the portal's pages did not open")
            time.sleep(0.05)
    return thread, figures


def differences(url: str, expected: dict[str, list[Row]]) -> list[str]:
    """What differs between each branch's rows and the city's, by site."""
    lost: list[str] = []
    for site, rows in expected.items():
        found = history_differences(rows, city_history(url, site), limit=sys.maxsize)
        lost += [f"{site}: {line}" for line in found]
    return lost


def measure(directory: Path, args: argparse.Namespace) -> Figures:
    """Run the floor, then the city at full load; check and size what the city stored."""
    context = multiprocessing.get_context("spawn")
    pace = Paces(args.think_ms / 1000, args.presses + WARMUP_PRESSES, args.press_think_ms / 1000)
    shares = Shares.split()
    # Whatever this process starts runs at the rest's priority, but the measured office.
    with shares.on(shares.rest):
        floor = floor_phase(context, directory / "floor", pace, shares)
        return measure_city(context, directory, args, pace, shares, floor)


def measure_city(
    context: Any,
    directory: Path,
    args: argparse.Namespace,
    pace: Paces,
    shares: Shares,
    floor: list[float],
) -> Figures:
    """The city at full load for ``--seconds``, the first branch's clerks pressing from its
    start; then the catch-up, the portal's capacity and the comparison of every row."""
    sites = [site_name(n, args.real) for n in range(args.branches)]
    real, simulated = sites[: args.real], sites[args.real :]
    with ExitStack() as stack:
        city = start_city(directory / "city", args.database_url, sites, stack)
        offices = {}
        for site in real:
            with shares.on(shares.office if site == SITE else None):
                offices[site] = stack.enter_context(
                    branch_office(
                        directory / site,
                        site,
                        uplink_section(city.settings, site, city.passwords[site]),
                        tickets(pace.presses),
                    )
                )
        acks = Acks(consumer_account(city.settings))
        acks.connection.start()
        stack.callback(acks.connection.stop)
        display = Display()
        with shares.on(shares.office):
            lobby(offices[SITE].accounts, stack, display.on_call, display.on_counter_state)
        if not display.counter_states.wait(WAIT_S):
            raise BenchError("the first branch's hub published no counter state")
        load = Load(context)
        stack.callback(load.close)
        load.offices(offices, pace.think_s, directory / "devices")
        if simulated:
            accounts = {site: city.account(site) for site in simulated}
            load.start(
                simulated_branches, directory / "simulated", accounts, pace.think_s, load.done
            )
        load.wait_ready()
        port = city.settings["city"]["web_port"]
        pages_thread, pages = portal_load(
            port, args.live, args.seconds, REFRESH_S, directory / "pages.ready"
        )
        # The window: every load runs from here for --seconds (the pages' time); the
        # measured clerks press within it.
        began = datetime.now(UTC)
        window_ends = time.monotonic() + args.seconds
        try:
            with shares.on(shares.office):
                branch = sync_phase(
                    context,
                    offices[SITE].accounts,
                    directory / "devices",
                    pace.presses,
                    pace.press_think_s,
                    display,
                )
            pressed_s = args.seconds - (window_ends - time.monotonic())
            pages_thread.join(args.seconds + START_S * 2)
        finally:
            ended = datetime.now(UTC)
            workers = [w for w in load.finish() if isinstance(w, Worker)]
        # The load is over: the city runs at a normal priority again.
        shares.release([os.getpid(), *(postmaster(city.url) if args.database_url is None else [])])
        databases = {site: directory / site for site in real}
        databases.update({site: directory / "simulated" / site for site in simulated})
        expected = {
            site: branch_history(sqlite_url(path / "hub.sqlite3"))
            for site, path in databases.items()
        }
        catch_up = acks.wait(
            {s: rows[-1]["seq"] for s, rows in expected.items() if rows}, CATCH_UP_S
        )
        # The portal's capacity, once the lag's window is over: it does not load it.
        capacity_thread, capacity = portal_load(port, args.live, args.portal_seconds, 0.0)
        capacity_thread.join(args.portal_seconds + START_S * 2)
        lags, stored, size = stored_figures(city.url, began, ended)
        real_lags = [lag for site, lag in lags if site in real]
        return Figures(
            floor=floor,
            branch=branch.latencies,
            pressed_s=pressed_s,
            shares=shares,
            lags=[lag for _, lag in lags],
            real_lags=real_lags if len(real_lags) > 1 else [0.0, 0.0],
            events_per_s=stored / (ended - began).total_seconds(),
            pages=Portal.of(args.live, pages),
            portal=Portal.of(args.live, capacity),
            rows=sum(len(rows) for rows in expected.values()),
            lost=differences(city.url, expected),
            bytes_per_row=size,
            branches=args.branches,
            real=args.real,
            actions=sum(w.tickets + w.presses for w in workers) + COUNTERS * pace.presses,
            span=(ended - began).total_seconds(),
            catch_up_s=catch_up,
        )


def stored_figures(
    url: str, began: datetime, ended: datetime
) -> tuple[list[tuple[str, float]], int, float]:
    """The site and lag of each transition of the window, how many there were, bytes
    per row."""
    table = BranchEventRow.__table__
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            # Transitions of the window (not the offices' seeding before it, sent at start).
            window = (table.c.at >= began) & (table.c.at < ended)
            rows = conn.execute(
                select(table.c.site, table.c.at, table.c.received_at).where(window)
            ).all()
            count = conn.execute(select(func.count()).select_from(table)).scalar_one()
            size = conn.execute(text("SELECT pg_total_relation_size('branch_events')")).scalar_one()
    finally:
        engine.dispose()
    lags = [(site, (received - at).total_seconds()) for site, at, received in rows]
    return lags, len(rows), size / max(count, 1)


def report(figures: Figures, args: argparse.Namespace) -> bool:
    """Print the figures as text, then as one JSON line; whether the targets are met."""
    lag_p50, lag_p99 = percentiles(figures.lags)
    real_p50, real_p99 = percentiles(figures.real_lags)
    floor_p50, floor_p99 = (ms(v) for v in percentiles(figures.floor))
    branch_p50, branch_p99 = (ms(v) for v in percentiles(figures.branch))
    ratio = branch_p99 / floor_p99
    within = figures.pressed_s <= args.seconds
    pages, portal = figures.pages, figures.portal
    pages_p50, pages_p99 = pages.p50_p99_ms()
    portal_p50, portal_p99 = portal.p50_p99_ms()
    met = (
        lag_p99 <= TARGET_LAG_P99_S
        and not figures.lost
        and ratio <= TARGET_BRANCH_RATIO
        and within
        and not pages.failures
        and not portal.failures
    )
    print(
        f"city:     {figures.branches} branches ({figures.real} real, the rest simulated), "
        f"50 devices each, people pausing {args.think_ms:.0f} ms on average"
    )
    print(f"shares:   {figures.shares.described}")
    print(
        f"events:   {figures.events_per_s:8.1f} /s into the city; "
        f"{figures.actions / figures.span:.1f} tickets and presses /s at the branches"
    )
    print(f"lag:      p50 {lag_p50:7.3f} s   p99 {lag_p99:7.3f} s   transition → city's row")
    print(
        f"          p50 {real_p50:7.3f} s   p99 {real_p99:7.3f} s   the real branches' alone "
        f"(max {max(figures.lags, default=0.0):.3f} s of all)"
    )
    print(
        f"pages:    {pages.rps:8.1f} req/s from {pages.clients} open portal pages refreshing "
        f"every {REFRESH_S} s; p50 {pages_p50:.1f} ms  p99 {pages_p99:.1f} ms; "
        f"{pages.failures} failed"
    )
    print(
        f"portal:   {portal.rps:8.1f} req/s with {portal.clients} clients asking without pause "
        f"(after the window, {args.portal_seconds:.0f} s); p50 {portal_p50:.1f} ms  "
        f"p99 {portal_p99:.1f} ms; {portal.failures} failed"
    )
    pressed = (
        f"the last call {figures.pressed_s:.0f} s into the {args.seconds:.0f} s window"
        if within
        else f"NOT within the window: the last call came {figures.pressed_s:.0f} s into "
        f"its {args.seconds:.0f} s"
    )
    print(
        f"branch:   p50 {branch_p50:7.2f} ms  p99 {branch_p99:7.2f} ms  press → call, city at "
        f"load: {len(figures.branch)} presses, clerks pausing {args.press_think_ms:.0f} ms "
        f"on average; {pressed}"
    )
    print(
        f"floor:    p50 {floor_p50:7.2f} ms  p99 {floor_p99:7.2f} ms  press → call, single "
        f"office: {len(figures.floor)} presses at the same pace"
    )
    print(
        f"rows:     {figures.rows} compared row by row, {len(figures.lost)} differences; "
        f"{figures.bytes_per_row:.0f} bytes per row in PostgreSQL (table and indexes)"
    )
    for line in figures.lost[:10]:
        print(f"  {line}")
    caught = (
        f"{figures.catch_up_s:.1f} s"
        if figures.catch_up_s is not None
        else f"not within {CATCH_UP_S:.0f} s"
    )
    print(f"catch-up: the city held every row {caught} after the load stopped")
    print(
        f"ratio:    {ratio:.2f}× the single office's p99; targets lag p99 ≤ "
        f"{TARGET_LAG_P99_S:.0f} s, nothing lost or doubled, ratio ≤ {TARGET_BRANCH_RATIO}: "
        f"{'met' if met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "bench": "city",
                "branches": figures.branches,
                "real_branches": figures.real,
                "devices_per_branch": COUNTERS + KIOSKS + DISPLAYS,
                "think_ms": args.think_ms,
                "seconds": args.seconds,
                "events_per_s": round(figures.events_per_s, 1),
                "actions_per_s": round(figures.actions / figures.span, 1),
                "lag_p50_s": round(lag_p50, 3),
                "lag_p99_s": round(lag_p99, 3),
                "lag_max_s": round(max(figures.lags, default=0.0), 3),
                "real_lag_p50_s": round(real_p50, 3),
                "real_lag_p99_s": round(real_p99, 3),
                "live_pages": pages.clients,
                "live_refresh_s": REFRESH_S,
                "live_rps": round(pages.rps, 1),
                "live_p50_ms": round(pages_p50, 1),
                "live_p99_ms": round(pages_p99, 1),
                "live_failures": pages.failures,
                "portal_clients": portal.clients,
                "portal_seconds": args.portal_seconds,
                "portal_rps": round(portal.rps, 1),
                "portal_p50_ms": round(portal_p50, 1),
                "portal_p99_ms": round(portal_p99, 1),
                "portal_failures": portal.failures,
                "branch_p50_ms": round(branch_p50, 2),
                "branch_p99_ms": round(branch_p99, 2),
                "floor_p50_ms": round(floor_p50, 2),
                "floor_p99_ms": round(floor_p99, 2),
                "ratio_p99": round(ratio, 2),
                "branch_presses": len(figures.branch),
                "floor_presses": len(figures.floor),
                "press_think_ms": args.press_think_ms,
                "branch_pressed_s": round(figures.pressed_s, 1),
                "office_nice": figures.shares.office,
                "rest_nice": figures.shares.rest,
                "rows_compared": figures.rows,
                "rows_differing": len(figures.lost),
                "catch_up_s": None if figures.catch_up_s is None else round(figures.catch_up_s, 1),
                "bytes_per_row": round(figures.bytes_per_row, 1),
                "target_lag_p99_s": TARGET_LAG_P99_S,
                "target_ratio": TARGET_BRANCH_RATIO,
                "target_met": met,
            }
        )
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branches", type=int, default=BRANCHES, help="branches in the city")
    parser.add_argument("--real", type=int, default=REAL, help="real branches (hub + broker)")
    parser.add_argument(
        "--seconds", type=float, default=SECONDS, help="the full-load window, in seconds"
    )
    parser.add_argument(
        "--think-ms", type=float, default=THINK_MS, help="each person's mean pause, in ms"
    )
    parser.add_argument(
        "--presses",
        type=int,
        default=PRESSES,
        help="measured presses per clerk in each press → call phase",
    )
    parser.add_argument(
        "--press-think-ms",
        type=float,
        default=PRESS_THINK_MS,
        help="the measured clerks' mean pause, in ms",
    )
    parser.add_argument(
        "--live", type=int, default=LIVE, help="open portal pages, then clients asking at once"
    )
    parser.add_argument(
        "--portal-seconds",
        type=float,
        default=PORTAL_S,
        help="how long the portal's capacity is measured, after the window",
    )
    parser.add_argument("--pace-s", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    parser.add_argument(
        "--database-url", help="the city's PostgreSQL (default: a throwaway cluster)"
    )
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    if not 1 <= args.real <= args.branches:
        parser.error("--real must be from 1 to --branches")
    if not 1 <= args.presses <= MAX_PRESSES - WARMUP_PRESSES - 10:
        parser.error(f"--presses must be from 1 to {MAX_PRESSES - WARMUP_PRESSES - 10}")
    if min(args.seconds, args.portal_seconds, args.think_ms, args.press_think_ms) <= 0:
        parser.error(
            "--seconds, --portal-seconds, --think-ms and --press-think-ms must be more than 0"
        )
    if args.live < 1:
        parser.error("--live must be more than 0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = run_in_tempdir(
        lambda tmp: measure(tmp, args), "the city, the branches and their devices"
    )
    sys.exit(0 if report(figures, args) else 2)


if __name__ == "__main__":
    main()
