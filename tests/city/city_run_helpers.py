"""A small city for tests: branch offices bridged to a city's broker, their devices at work,
the city's view of them, and the check that the city holds each branch's history exactly.

A :class:`Branch` is an office as on its own hub machine: its own Mosquitto, configured
as ``poradovnik broker config`` writes it (so with the bridge to the city that
``[uplink]`` asks for), and ``poradovnik hub`` as a process of its own on its own SQLite
database with the demo office. :class:`BranchDevices` are its kiosk, a counter panel and the lobby
display on :class:`~sync_agent.link.DeviceLink` with durable outboxes, and
:class:`Activity` keeps every branch's citizens and clerks at work in threads while a
test breaks things. :class:`CityServer` is the city as :mod:`city.demo` sets it up (its
broker, ``poradovnik city``, a database of its own), and :class:`CityWatch` listens on
the city's broker for the acks the city's consumer publishes; :mod:`city.verify`
compares the city's ``branch_events`` with a branch's ``events`` row by row.

Mosquitto, started as root, drops to its own user and reads its files as that user:
every directory here lives under :func:`reachable_root` (pytest's ``tmp_path`` is
root's only).
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import threading
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from process_helpers import Process, poradovnik_args
from pydantic import SecretStr
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from city.app import uplink_section
from city.demo import city_settings, consumer_account, start_city_broker
from city.live import SUBSCRIPTIONS, LiveCity
from city.store import CityStore
from city.tables import BranchProgressRow
from city.verify import Row, branch_history
from common.identity import HUB_DEVICE_ID
from common.settings import MqttSettings, load_settings
from hub.accounts import add_device, write_broker_config
from hub.app import open_queue, seed_demo
from hub.broker import Mosquitto, free_port
from hub.store import sqlite_url
from sync_agent import protocol as p
from sync_agent.city_protocol import EVERY_BRANCH, HistoryAck, decode_city, site_of
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.link import DeviceLink, Reply

WAIT_S = 30.0
"""How long anything (a start, a connection, a reply) may take: an upper bound, never a pause."""

ANSWER_S = 120.0
"""How long a press may wait for its answer: across a hub killed and started again."""

KIOSK, PANEL, LOBBY = "kiosk-k1", "panel-p1", "display-d1"
"""Each branch's devices: a kiosk, the panel of counters 4 and 5, the lobby display."""

COUNTERS = ("4", "5")
"""The counters the branch's clerks work at (demo office: 5 serves every service)."""

SERVICES = ("taxes", "waste", "parking", "info")
"""The demo office's services, which the citizens ask for in turn."""

THINK_S = 0.15
"""The simulated people's pace: a citizen or clerk acts this long after the last answer."""


@contextmanager
def reachable_root(prefix: str = "poradovnik-city-") -> Iterator[Path]:
    """A new directory Mosquitto's own user can reach (mode 0755), removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_toml(path: Path, config: Mapping[str, Any]) -> Path:
    """Write ``config`` as TOML to ``path`` (owner-only: it holds passwords); the path."""
    path.write_text(tomli_w.dumps(dict(config)))
    path.chmod(0o600)
    return path


# -- a branch office ------------------------------------------------------------------


@dataclass
class Branch:
    """One branch office: its broker (bridged to the city), its hub process, its database.

    Made by :func:`make_branch`; the hub is started with :meth:`start_hub`.
    """

    site: str
    root: Path
    config: Path
    """The hub's settings file (``[uplink]`` included)."""
    broker: Mosquitto
    passwords: dict[str, str]
    """Each device account's password, by user name."""
    start: Callable[..., Process]
    """Starts a program whose output a failed test reports (the ``processes`` fixture)."""
    hub: Process | None = None

    @property
    def database(self) -> Path:
        """The hub's SQLite database."""
        return self.root / "hub" / "hub.sqlite3"

    def mqtt(self, username: str) -> MqttSettings:
        """The ``[mqtt]`` settings of one of the branch's device accounts."""
        password = SecretStr(self.passwords[username])
        return MqttSettings(
            host="127.0.0.1", port=self.broker.port, username=username, password=password
        )

    def start_hub(self) -> Process:
        """Start ``poradovnik hub`` on the branch's settings (not waiting for it)."""
        self.hub = self.start(
            poradovnik_args("--config", str(self.config), "hub"),
            name=f"hub of {self.site}",
            cwd=self.root,
        )
        return self.hub

    def kill_hub(self) -> None:
        """End the hub at once (SIGKILL), as a power cut would."""
        assert self.hub is not None
        self.hub.kill()

    def history(self) -> list[Row]:
        """The branch's audit log, oldest first (``seq`` = ``events.id``)."""
        return branch_history(sqlite_url(self.database))


def make_branch(
    root: Path, site: str, uplink: Mapping[str, Any], start: Callable[..., Process]
) -> Branch:
    """Set up branch ``site`` in ``root`` and start its broker; the hub is not started.

    Its settings take the ``[uplink]`` section the city gave for it (``uplink``); its
    database gets the demo office and the accounts of its devices; ``poradovnik broker
    config`` writes its Mosquitto's files, bridge to the city included, and that
    Mosquitto is started on a free port.
    """
    root.mkdir(parents=True)
    root.chmod(0o755)
    port = free_port()
    hub_password = uuid.uuid4().hex
    config = write_toml(
        root / "poradovnik.toml",
        {
            "role": "hub",
            "site": {"id": site, "name": f"Pobočka {site}"},
            "mqtt": {
                "host": "127.0.0.1",
                "port": port,
                "username": HUB_DEVICE_ID,
                "password": hub_password,
            },
            "data": {"dir": str(root / "hub")},
            "web": {"host": "127.0.0.1", "port": free_port(), "secure_cookies": False},
            "broker": {"dir": str(root / "broker"), "port": port, "bind": "127.0.0.1"},
            "uplink": dict(uplink),
            "logging": {"level": "INFO"},
        },
    )
    settings = load_settings(config, env={})
    queue = open_queue(settings)
    try:
        seed_demo(queue)
    finally:
        queue.store.close()
    passwords = {
        KIOSK: add_device(settings, KIOSK, "kiosk")[1],
        PANEL: add_device(settings, PANEL, "counter", COUNTERS)[1],
        LOBBY: add_device(settings, LOBBY, "display")[1],
    }
    files = write_broker_config(settings)  # what `poradovnik broker config` writes
    broker = Mosquitto(files.config, port)
    broker.start()
    return Branch(site, root, config, broker, passwords, start)


# -- the branch's devices and their people --------------------------------------------


class BranchDevices:
    """A branch's kiosk, counter panel and lobby display, each with its own account.

    :meth:`act` sends a command durably (through the device's outbox, as a real press
    does) and waits for its answer. The lobby keeps the branch's latest retained
    queue states and hears the hub's status.
    """

    def __init__(self, branch: Branch, directory: Path, stack: ExitStack) -> None:
        self.branch = branch
        self._answers: dict[str, Reply] = {}
        self._changed = threading.Condition()
        self.queues: dict[str, p.QueueState] = {}
        """The branch's retained queue states, by service, as the lobby last heard them."""
        self.hub_online = 0
        """How many times the lobby heard the hub say ``online``."""
        self.kiosk = self._link(KIOSK, "kiosk", directory, stack)
        self.panel = self._link(PANEL, "counter", directory, stack)
        self.lobby = self._link(LOBBY, "display", directory, stack, outbox=False)
        self.lobby.subscribe(self.lobby.topics.queue(p.ANY), self._on_queue)
        self.lobby.subscribe(self.lobby.topics.hub_status(), self._on_hub_status)
        for link in (self.kiosk, self.panel, self.lobby):
            stack.callback(link.stop)
            link.start()
        for link in (self.kiosk, self.panel, self.lobby):
            assert link.connection.subscribed.wait(WAIT_S), f"{link.device_id} did not connect"

    def _link(
        self, name: str, role: str, directory: Path, stack: ExitStack, *, outbox: bool = True
    ) -> DeviceLink:
        link = DeviceLink(
            mqtt=self.branch.mqtt(name),
            site=self.branch.site,
            device_id=name,
            role=role,
            outbox_path=directory / f"{self.branch.site}-{name}.sqlite3" if outbox else None,
            reply_timeout_s=2.0,
            backoff_base_s=0.05,
            backoff_cap_s=0.5,
        )
        link.on_reply(self._on_reply)
        return link

    def _on_reply(self, command: p.Request, reply: Reply) -> None:
        with self._changed:
            self._answers[command.msg_id] = reply
            self._changed.notify_all()

    def _on_queue(self, _topic: str, payload: bytes) -> None:
        if payload:
            state = p.decode(p.QueueState, payload)
            with self._changed:
                self.queues[state.service] = state
                self._changed.notify_all()

    def _on_hub_status(self, _topic: str, payload: bytes) -> None:
        if payload and p.decode(p.DeviceStatus, payload).state == "online":
            with self._changed:
                self.hub_online += 1
                self._changed.notify_all()

    def wait_hub_online(self, after: int) -> None:
        """Wait until the lobby has heard the hub say ``online`` more than ``after`` times."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.hub_online > after, WAIT_S):
                hub = self.branch.hub
                raise AssertionError(
                    f"the hub of {self.branch.site} did not come online: "
                    f"{hub.describe() if hub else 'not started'}"
                )

    def act(self, link: DeviceLink, topic: str, command: p.Request) -> Reply:
        """Send ``command`` from ``link`` durably and wait for the hub's answer."""
        link.send(topic, command)
        with self._changed:
            answered = self._changed.wait_for(lambda: command.msg_id in self._answers, ANSWER_S)
            if not answered:
                hub = self.branch.hub
                raise AssertionError(
                    f"{self.branch.site}: no answer to {command!r} in {ANSWER_S:g} s; "
                    f"{hub.describe() if hub else 'no hub'}"
                )
            return self._answers.pop(command.msg_id)

    def press(self, counter: str, action: str) -> p.CommandReply:
        """A clerk presses ``action`` at ``counter``; the hub's answer."""
        command = p.CounterCommand(msg_id=uuid.uuid4().hex, action=action)  # type: ignore[arg-type]
        reply = self.act(self.panel, self.panel.topics.counter_cmd(counter), command)
        assert isinstance(reply, p.CommandReply), f"{self.branch.site} {action}: {reply!r}"
        return reply

    def issue(self, service: str) -> p.TicketReply:
        """A citizen takes a ticket of ``service`` at the kiosk; the hub's answer."""
        command = p.IssueRequest(msg_id=uuid.uuid4().hex, service=service)
        reply = self.act(self.kiosk, self.kiosk.topics.kiosk_issue(KIOSK), command)
        assert isinstance(reply, p.TicketReply), f"{self.branch.site} issue: {reply!r}"
        return reply

    def open_counters(self) -> None:
        """The clerks open their counters."""
        for counter in COUNTERS:
            self.press(counter, "resume")

    def round(self, turn: int) -> None:
        """One round of the office: a citizen takes a ticket, a clerk calls and serves one."""
        self.issue(SERVICES[turn % len(SERVICES)])
        counter = COUNTERS[turn % len(COUNTERS)]
        if self.press(counter, "next").ticket is not None:
            self.press(counter, "done")


class Activity:
    """Every branch's people at work, each branch in a thread of its own, until stopped.

    :meth:`wait_rounds` waits for work to be done (so a test's phase is measured in
    answered presses); a failure in any branch fails the next wait.
    """

    def __init__(self, offices: list[BranchDevices]) -> None:
        self.offices = offices
        self.rounds = {office.branch.site: 0 for office in offices}
        """Rounds each branch has completed, every press answered."""
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._work, args=(office,), name=f"office-{office.branch.site}")
            for office in offices
        ]

    def start(self) -> Activity:
        """Let the people start working."""
        for thread in self._threads:
            thread.start()
        return self

    def _work(self, office: BranchDevices) -> None:
        site = office.branch.site
        try:
            turn = 0
            while not self._stop.wait(THINK_S):
                office.round(turn)
                turn += 1
                with self._changed:
                    self.rounds[site] = turn
                    self._changed.notify_all()
        except BaseException as failed:  # reported by the waits of the test's thread
            with self._changed:
                self._errors.append(f"{site}: {failed}")
                self._changed.notify_all()

    def counts(self) -> dict[str, int]:
        """The rounds done so far, by branch."""
        with self._changed:
            return dict(self.rounds)

    def wait_rounds(self, more: int, since: Mapping[str, int] | None = None) -> dict[str, int]:
        """Wait until every branch has done ``more`` rounds beyond ``since`` (default: now)."""
        with self._changed:
            base = dict(since if since is not None else self.rounds)
            done = self._changed.wait_for(
                lambda: (
                    bool(self._errors) or all(self.rounds[s] >= base[s] + more for s in self.rounds)
                ),
                ANSWER_S,
            )
            assert not self._errors, "; ".join(self._errors)
            assert done, f"the offices did {self.rounds} rounds, waited for {more} beyond {base}"
            return dict(self.rounds)

    def work_for(self, seconds: float) -> dict[str, int]:
        """Keep working for ``seconds`` (a span of the scenario), checking every branch's
        presses are answered meanwhile; the rounds done in that span, by branch."""
        before = self.counts()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.wait_rounds(1)
        after = self.counts()
        return {site: after[site] - before[site] for site in after}

    def stop(self) -> None:
        """Stop after the rounds under way; every answer is in when this returns."""
        self._stop.set()
        for thread in self._threads:
            thread.join(ANSWER_S)
        assert not self._errors, "; ".join(self._errors)


# -- the city, as a test sees it ------------------------------------------------------


class CityWatch:
    """A client of the city's broker: the acks the city publishes, and its live state.

    It logs in with the account given (the city's own), hears every branch's retained
    ``city/ack`` and feeds a :class:`~city.live.LiveCity` of its own with what the
    bridges bring (to compare with the city's pages).
    """

    def __init__(self, mqtt: MqttSettings) -> None:
        self.acks: dict[str, int] = {}
        self.live = LiveCity()
        self._changed = threading.Condition()
        self.connection = MqttConnection(mqtt=mqtt, client_id=f"test-watch-{uuid.uuid4().hex[:8]}")
        self.connection.subscribe(EVERY_BRANCH.ack, self._on_ack)
        for topic in SUBSCRIPTIONS:
            self.connection.subscribe(topic, self._on_live)

    def __enter__(self) -> CityWatch:
        self.connection.start()
        assert self.connection.subscribed.wait(WAIT_S), "the test could not watch the city broker"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.connection.stop()

    def _on_ack(self, message: Inbound) -> None:
        if not message.payload:
            return
        ack = decode_city(HistoryAck, message.payload)
        with self._changed:
            self.acks[site_of(message.topic)] = ack.seq
            self._changed.notify_all()

    def _on_live(self, message: Inbound) -> None:
        self.live.apply(message.topic, message.payload)

    def wait_acked(self, wanted: Mapping[str, int], timeout: float, why: Callable[[], str]) -> None:
        """Wait until the city has acked at least ``wanted[site]`` of every site."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: all(self.acks.get(site, 0) >= seq for site, seq in wanted.items()),
                timeout,
            )
            acks = dict(self.acks)
        assert done, f"the city acked {acks}, the branches hold {dict(wanted)}: {why()}"


# -- the city's server ----------------------------------------------------------------


@dataclass
class CityServer:
    """The city's side: its broker, ``poradovnik city`` (consumer and web) and database.

    Made by :func:`start_city`. ``uplinks`` is the ``[uplink]`` section the city gave
    each branch (``poradovnik city branch add``), by site.
    """

    root: Path
    config: Path
    database_url: str
    broker: Mosquitto
    consumer_mqtt: MqttSettings
    """The consumer's own account on the city's broker (it may read every branch)."""
    web_port: int
    uplinks: dict[str, dict[str, Any]]
    start: Callable[..., Process]
    process: Process | None = None

    def run(self) -> Process:
        """Start ``poradovnik city`` and wait until its web pages answer."""
        self.process = self.start(
            poradovnik_args("--config", str(self.config), "city"), name="city", cwd=self.root
        )
        self.process.wait_for_line(
            lambda line: f":{self.web_port}" in line, WAIT_S, what="where its pages are"
        )
        return self.process

    def restart(self) -> None:
        """Stop ``poradovnik city`` as systemd does (SIGTERM) and start it again."""
        assert self.process is not None
        assert self.process.stop(signal.SIGTERM, timeout=WAIT_S) == 0, self.process.describe()
        self.run()

    def progress(self) -> dict[str, int]:
        """``branch_progress``: how far the city holds each branch's history, by site."""
        table = BranchProgressRow.__table__
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(table.c.site, table.c.seq)).all()
        finally:
            engine.dispose()
        return {site: seq for site, seq in rows}

    def describe(self) -> str:
        """The city's process and broker, for an assertion message."""
        process = self.process.describe() if self.process is not None else "city not started"
        return f"{process}\ncity broker: {self.broker.tail(30)}"

    def branches_api(self) -> list[dict[str, Any]]:
        """``GET /api/v1/branches`` of the city's web pages: every branch, live."""
        url = f"http://127.0.0.1:{self.web_port}/api/v1/branches"
        with urllib.request.urlopen(url, timeout=WAIT_S) as answer:
            branches: list[dict[str, Any]] = json.load(answer)
        return branches

    def wait_live_queues(
        self, site: str, queues: Mapping[str, p.QueueState], timeout: float
    ) -> None:
        """Wait until the city's API shows ``site``'s people waiting as ``queues`` say.

        The city's live view follows the branch's retained states as they come; each
        look is a request of the API, until they agree or ``timeout`` passes.
        """
        wanted = {service: state.waiting for service, state in queues.items()}
        deadline = time.monotonic() + timeout
        shown: dict[str, int] = {}
        while time.monotonic() < deadline:
            branch = next((b for b in self.branches_api() if b["site"] == site), {})
            shown = {s["code"]: s["waiting"] for s in branch.get("services", [])}
            if shown == wanted:
                return
        raise AssertionError(f"the city shows {site} waiting {shown}, the branch {wanted}")


def start_city(
    root: Path,
    database_url: str,
    sites: Iterable[str],
    start: Callable[..., Process],
    stack: ExitStack,
) -> CityServer:
    """Set up the city in ``root`` on the database ``database_url`` with a branch per site,
    and start its broker and ``poradovnik city`` (both stopped by ``stack``).

    Each branch gets the ``[uplink]`` section ``poradovnik city branch add`` prints.
    """
    root.mkdir(parents=True)
    root.chmod(0o755)
    city = city_settings(root, database_url, "INFO")
    config = write_toml(root / "city.toml", city)
    settings = load_settings(config, env={})
    uplinks = {}
    with CityStore(database_url) as store:
        store.upgrade()
        for site in sites:
            branch, password = store.add_branch(
                site, name=f"Pobočka {site}", address=f"{site} 1", url=f"https://{site}.example"
            )
            uplinks[site] = tomllib.loads(uplink_section(settings, branch, password))["uplink"]
        broker = start_city_broker(city, store, stack)
    server = CityServer(
        root,
        config,
        database_url,
        broker,
        consumer_account(city),
        city["city"]["web_port"],
        uplinks,
        start,
    )
    server.run()
    return server
