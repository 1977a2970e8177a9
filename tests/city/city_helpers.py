"""What the city's tests share: fresh databases, branches' batches as a branch sends them."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from city.broker import write_city_broker_config
from city.store import CityStore, branch_username
from common.settings import BrokerSettings, CitySettings, MqttSettings, Settings
from hub.broker import Mosquitto, free_port, own_files_user
from sync_agent.city_protocol import (
    CityTopics,
    HistoryAck,
    HistoryBatch,
    HistoryEvent,
    decode_city,
)
from sync_agent.connection import Inbound, MqttConnection

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """Create an empty database on the PostgreSQL ``server``; its URL. Dropped on leaving."""
    name = f"city_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def event(seq: int) -> HistoryEvent:
    """Row ``seq`` of a branch's audit log: the issue of ticket ``A<seq>``."""
    return HistoryEvent(
        seq=seq,
        at=T0 + timedelta(seconds=seq % 86_400),
        action="issue",
        actor="kiosk-1",
        ticket_id=f"t{seq % 10**9}",
        service="a",
        to_state="waiting",
        detail={"n": seq % 10**9},
        number=f"A{seq % 1000:03d}",
        business_day=date(2026, 12, 7),
    )


def batch(site: str, first: int, last: int, *, first_available: int = 1) -> HistoryBatch:
    """A batch of site ``site`` with the rows ``first`` to ``last``."""
    return HistoryBatch(
        site=site,
        first_available=first_available,
        events=[event(seq) for seq in range(first, last + 1)],
    )


CONSUMER_PASSWORD = "the city consumer's password"


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait until ``condition()`` holds; AssertionError after ``timeout``."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        pause.wait(0.02)


def city_settings(database_url: str, broker_dir: Path, *, port: int | None = None) -> Settings:
    """The settings of a city on ``database_url`` whose broker listens on a free port."""
    return Settings(
        role="city",
        city=CitySettings(
            database_url=database_url,
            mqtt_port=port if port is not None else free_port(),
            mqtt_password=SecretStr(CONSUMER_PASSWORD),
            web_port=free_port(),
            reconnect_max_s=1.0,
        ),
        broker=BrokerSettings(dir=broker_dir, bind="127.0.0.1", run_as=None),
    )


@dataclass
class CityBroker:
    """The city's Mosquitto, run by the test with the files ``city broker-config`` writes."""

    settings: Settings
    store: CityStore
    directory: Path
    process: Mosquitto | None = None

    def write(self) -> None:
        """Write the files from the branches in the database (and reload a running broker)."""
        broker = self.settings.broker.model_copy(update={"port": self.settings.city.mqtt_port})
        write_city_broker_config(
            self.settings.model_copy(update={"broker": broker}),
            self.store,
            directory=self.directory,
            user=own_files_user(),
        )
        if self.process is not None:
            self.process.reload()

    def start(self) -> None:
        self.write()
        self.process = Mosquitto(self.directory / "mosquitto.conf", self.settings.city.mqtt_port)
        self.process.start()

    def tail(self) -> str:
        """The end of the broker's log, for failure messages."""
        return self.process.tail() if self.process is not None else "(not started)"

    def login(self, username: str, password: str) -> MqttSettings:
        """``[mqtt]`` settings of an account on this broker."""
        return MqttSettings(
            host="127.0.0.1",
            port=self.settings.city.mqtt_port,
            username=username,
            password=SecretStr(password),
        )


class TestBranch:
    """A branch as the city sees it: its account on the city's broker, sending batches.

    It stands for a branch's hub behind its broker's bridge: it publishes batches on its
    history topic (QoS 1) and keeps the city's retained ack of its site.
    """

    __test__ = False

    def __init__(self, broker: CityBroker, site: str, password: str) -> None:
        self.site = site
        self.broker = broker
        self.topics = CityTopics(site)
        self.acks: list[int] = []
        self.messages: list[tuple[str, bytes]] = []
        self._changed = threading.Condition()
        self.connection = MqttConnection(
            mqtt=broker.login(branch_username(site), password), client_id=f"test-branch-{site}"
        )
        self.connection.subscribe(self.topics.ack, self._ack)
        self.connection.start()
        connected = self.connection.subscribed.wait(10)
        assert connected, f"branch {site} did not connect: {broker.tail()}"

    def watch(self, topic: str) -> None:
        """Keep what arrives on ``topic`` (its catalogue, say) for :meth:`wait_for_message`."""
        self.connection.subscribe(topic, self._keep)

    def _keep(self, message: Inbound) -> None:
        with self._changed:
            self.messages.append((message.topic, message.payload))
            self._changed.notify_all()

    def wait_for_message(self, topic: str, timeout: float = 15.0) -> bytes:
        """The payload of the next message on ``topic`` not yet taken."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(t == topic for t, _ in self.messages), timeout
            )
            if not found:
                raise AssertionError(f"branch {self.site}: nothing on {topic}: {self.messages}")
            index = next(i for i, (t, _) in enumerate(self.messages) if t == topic)
            return self.messages.pop(index)[1]

    def _ack(self, message: Inbound) -> None:
        if not message.payload:
            return
        ack = decode_city(HistoryAck, message.payload)
        with self._changed:
            self.acks.append(ack.seq)
            self._changed.notify_all()

    def send(self, batch: HistoryBatch) -> None:
        assert self.connection.publish(self.topics.history, batch.encode())

    def send_raw(self, payload: bytes, topic: str | None = None) -> bool:
        return self.connection.publish(topic or self.topics.history, payload)

    def wait_for_ack(self, seq: int, timeout: float = 15.0) -> list[int]:
        """Wait until the city acknowledges ``seq`` (the latest ack is ``seq``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.acks[-1:] == [seq], timeout):
                msg = f"branch {self.site}: no ack {seq}; acks {self.acks}; {self.broker.tail()}"
                raise AssertionError(msg)
            return list(self.acks)

    def ack_count(self) -> int:
        with self._changed:
            return len(self.acks)

    def wait_for_acks(self, count: int, timeout: float = 15.0) -> list[int]:
        """Wait until the city has published ``count`` acks in all; the acks."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.acks) >= count, timeout):
                msg = f"branch {self.site}: acks {self.acks}, not {count}; {self.broker.tail()}"
                raise AssertionError(msg)
            return list(self.acks)

    def stop(self) -> None:
        self.connection.stop()


def settings_file(path: Path, settings: Settings) -> Path:
    """Write ``settings`` (a city's) as the TOML file ``poradovnik city`` reads; the path.

    Its ``[broker] dir`` is ``cli-broker`` beside it: the commands' files, apart from
    those the test's own broker runs on.
    """
    city = settings.city
    password = city.mqtt_password.get_secret_value() if city.mqtt_password else ""
    path.write_text(
        f"""role = "city"

[city]
name = "Košice"
database_url = "{city.database_url}"
mqtt_port = {city.mqtt_port}
mqtt_password = "{password}"
web_port = {city.web_port}
reconnect_max_s = {city.reconnect_max_s}
uplink_host = "city.example.sk"

[broker]
dir = "{(path.parent / "cli-broker").as_posix()}"
port = {city.mqtt_port}
bind = "127.0.0.1"
""",
        encoding="utf-8",
    )
    return path


class ResendingBranch:
    """A test branch that sends its history as a branch's hub does (go-back-N).

    It holds the rows 1 to :meth:`have`; it sends batches of ``size`` while fewer than
    ``window`` are unacknowledged; an ack below what it sent (a gap, a city database
    that came back older) sends from there again, and so does no progress for
    ``resend_s``. It runs on a thread of its own until :meth:`stop`.
    """

    def __init__(
        self, branch: TestBranch, *, size: int = 10, window: int = 50, resend_s: float = 1.0
    ) -> None:
        self.branch = branch
        self.size = size
        self.window = window
        self.resend_s = resend_s
        self.sent = 0
        self.acked = 0
        self.held = 0
        self.resends = 0
        """How many times it went back."""
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-branch", daemon=True)
        self._thread.start()

    def have(self, last: int) -> None:
        """The branch holds rows 1 to ``last`` now."""
        with self.branch._changed:
            self.held = last
            self.branch._changed.notify_all()

    def _run(self) -> None:
        changed = self.branch._changed
        progress_at = time.monotonic()
        while not self._stop.is_set():
            with changed:
                changed.wait_for(
                    lambda: (
                        len(self.branch.acks) > self._seen
                        or (self.sent - self.acked < self.window and self.sent < self.held)
                        or self._stop.is_set()
                    ),
                    self.resend_s / 4,
                )
                for ack in self.branch.acks[self._seen :]:
                    if ack < self.acked:  # the city holds less than it said: from there again
                        self.sent = ack
                        self.resends += 1
                    if ack != self.acked:
                        progress_at = time.monotonic()
                    self.acked = ack
                self._seen = len(self.branch.acks)
                self.sent = max(self.sent, self.acked)
                stalled = time.monotonic() - progress_at >= self.resend_s
                if self.acked < self.sent and stalled:
                    self.sent = self.acked  # a batch (or its ack) was lost: go back
                    self.resends += 1
                    progress_at = time.monotonic()
                first, last = self.sent + 1, min(self.sent + self.size, self.held)
                if self.sent - self.acked >= self.window:
                    continue
            if first <= last:
                self.branch.send_raw(batch(self.branch.site, first, last).encode())
                self.sent = last

    def stop(self) -> None:
        self._stop.set()
        with self.branch._changed:
            self.branch._changed.notify_all()
        self._thread.join(5)
