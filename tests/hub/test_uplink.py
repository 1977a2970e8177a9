"""The branch's uplink: its audit log reaches the city once, in order, whatever is lost.

A real Mosquitto (the office's), a real hub queue on SQLite, and a stand-in for the
city's consumer: an acker on the same broker that stores what it gets the way the city
does (consecutive rows only) and answers with the retained acknowledgement.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from office_helpers import OfficeBroker, hub_settings
from sqlalchemy import select, update

from common.settings import Settings
from hub import retention
from hub.app import open_queue, seed_demo
from hub.service import QueueService
from hub.store.tables import EVENTS
from hub.uplink import Uplink, UplinkLog
from sync_agent.city_protocol import CityTopics, HistoryAck, HistoryBatch, HistoryEvent, decode_city
from sync_agent.connection import Inbound, MqttConnection

WAIT_S = 20.0


@dataclass
class Acker:
    """The city's consumer as the branch sees it: stores consecutive rows, acks the last.

    ``drop`` is how many of the next batches it ignores (a batch lost on the way).
    """

    connection: MqttConnection
    site: str
    stored: list[HistoryEvent] = field(default_factory=list)
    batches: int = 0
    drop: int = 0
    silent: bool = False
    """Store but never answer."""
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def progress(self) -> int:
        return self.stored[-1].seq if self.stored else 0

    def heard(self, message: Inbound) -> None:
        batch = decode_city(HistoryBatch, message.payload)
        with self.changed:
            self.batches += 1
            if self.drop:
                self.drop -= 1
                return
            p = self.progress
            if batch.first <= p + 1 or (p == 0 and batch.first == batch.first_available):
                self.stored += [event for event in batch.events if event.seq > p]
            self.changed.notify_all()
        if not self.silent:
            self.ack(self.progress)

    def ack(self, seq: int, site: str | None = None) -> None:
        ack = HistoryAck(site=site or self.site, seq=seq, at=datetime.now(UTC))
        self.connection.publish(CityTopics(self.site).ack, ack.encode(), retain=True)

    def wait_for(self, predicate: Callable[[Acker], bool], what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self), WAIT_S), (
                f"timed out waiting for {what}: stored up to {self.progress}, "
                f"{self.batches} batches"
            )


@pytest.fixture
def settings(broker: OfficeBroker, tmp_path: Path) -> Settings:
    return hub_settings(broker, tmp_path / "hub")


@pytest.fixture
def queue(settings: Settings) -> Iterator[QueueService]:
    service = open_queue(settings)
    seed_demo(service)
    yield service
    service.store.close()


@pytest.fixture
def acker(broker: OfficeBroker) -> Iterator[Acker]:
    connection = MqttConnection(mqtt=broker.mqtt("hub"), client_id="city-stand-in")
    acker = Acker(connection, broker.site)
    connection.subscribe(CityTopics(broker.site).history, acker.heard)
    connection.start()
    assert connection.subscribed.wait(WAIT_S)
    yield acker
    connection.stop()


@pytest.fixture
def start_uplink(broker: OfficeBroker, queue: QueueService) -> Iterator[Callable[..., Uplink]]:
    running: list[Uplink] = []

    def start(**options: float) -> Uplink:
        uplink = Uplink(queue.store, site=broker.site, mqtt=broker.mqtt("hub"), **options)  # type: ignore[arg-type]
        queue.subscribe(uplink.changed)
        running.append(uplink.start())
        return uplink

    yield start
    for uplink in running:
        uplink.stop()


def issue(queue: QueueService, n: int) -> None:
    for i in range(n):
        queue.issue(("taxes", "waste", "parking")[i % 3])


def log_ids(queue: QueueService) -> list[int]:
    with queue.store.db.connect() as conn:
        return list(conn.execute(select(EVENTS.c.id).order_by(EVENTS.c.id)).scalars())


def assert_copy_complete(acker: Acker, queue: QueueService) -> None:
    """The city's copy is the branch's log, row by row, once each and in order."""
    ids = log_ids(queue)
    assert [e.seq for e in acker.stored] == ids
    with queue.store.db.connect() as conn:
        rows = conn.execute(select(EVENTS).order_by(EVENTS.c.id)).all()
    assert [(e.action, e.actor, e.ticket_id) for e in acker.stored] == [
        (r.action, r.actor, r.ticket_id) for r in rows
    ]


def wait_acked(uplink: Uplink, seq: int) -> None:
    with uplink.idle:
        assert uplink.idle.wait_for(lambda: uplink.acked >= seq, WAIT_S), (
            f"the uplink holds ack {uplink.acked}, not {seq}"
        )


def test_every_event_arrives_once_in_order_with_its_ticket(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    issue(queue, 5)
    uplink = start_uplink()
    issue(queue, 250)  # more than two batches, while it runs
    last = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == last, f"every row up to {last}")
    assert_copy_complete(acker, queue)
    first = acker.stored[0]
    ticket = queue.store.ticket(first.ticket_id) if first.ticket_id else None
    assert ticket is not None
    assert first.number == ticket.number
    assert first.business_day == ticket.business_day
    wait_acked(uplink, last)
    assert UplinkLog(queue.store).acked() == last


def test_a_lower_ack_makes_the_branch_send_again_from_there(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    issue(queue, 30)
    uplink = start_uplink()
    last = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == last, "the first rows")
    wait_acked(uplink, last)
    # The city's database came back from an older state: it holds 10 rows only.
    with acker.changed:
        del acker.stored[10:]
    acker.ack(10)
    acker.wait_for(lambda a: a.progress == last, "the rows again from 11")
    assert_copy_complete(acker, queue)


def test_a_lost_batch_is_sent_again_after_the_timeout(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    acker.drop = 1
    start_uplink(resend_s=0.5)
    issue(queue, 20)
    last = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == last, "the lost batch sent again")
    assert acker.batches >= 2
    assert_copy_complete(acker, queue)


def test_a_restarted_hub_goes_on_from_the_kept_ack(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    issue(queue, 40)
    first = start_uplink()
    last = log_ids(queue)[-1]
    wait_acked(first, last)
    first.stop()
    batches = acker.batches
    issue(queue, 7)
    second = start_uplink()
    newest = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == newest, "the rows after the restart")
    wait_acked(second, newest)
    assert acker.batches == batches + 1, "the restarted hub sent old rows again"
    assert_copy_complete(acker, queue)


def test_the_window_bounds_what_is_unacknowledged(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    acker.silent = True
    issue(queue, 60)
    uplink = start_uplink(window=25, resend_s=60)
    acker.wait_for(lambda a: a.progress >= 25, "the first window")
    with uplink.idle:
        uplink.idle.wait_for(lambda: uplink.sent == 25, WAIT_S)
    assert acker.progress == 25
    assert uplink.sent == 25
    acker.silent = False
    acker.ack(25)
    last = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == last, "the rest after the ack")
    assert_copy_complete(acker, queue)


def test_retention_keeps_what_the_city_has_not_acknowledged(
    queue: QueueService, settings: Settings, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    acker.silent = True
    issue(queue, 10)
    uplink = start_uplink(resend_s=60)
    acker.wait_for(lambda a: a.progress == 10, "the rows")
    acker.ack(4)
    wait_acked(uplink, 4)
    # Every row is older than the history kept.
    with queue.store.transaction() as conn:
        conn.execute(update(EVENTS).values(at=datetime.now(UTC) - timedelta(days=500)))
    now = datetime.now(UTC)
    keep = dict(history_days=400, working_days=7)
    cutoffs = retention.Cutoffs.of(now, now.date(), **keep, acked_events_only=True)
    report = retention.prune(queue.store, cutoffs, batch=3)
    assert report.deleted["events"] == 4
    assert log_ids(queue) == list(range(5, 11))
    # Without an uplink, they all go.
    retention.prune(queue.store, retention.Cutoffs.of(now, now.date(), **keep), batch=3)
    assert log_ids(queue) == []
    # And the ids go on above them: never reused.
    issue(queue, 1)
    assert log_ids(queue) == [11]


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "not JSON"),
        (b'{"v": 1, "site": "office", "seq": -3, "at": "2026-12-07T10:00:00Z"}', "negative"),
        (b'{"v": 1, "site": "elsewhere", "seq": 3, "at": "2026-12-07T10:00:00Z"}', "wrong site"),
        (b'{"v": 1, "site": "office", "seq": 99999, "at": "2026-12-07T10:00:00Z"}', "ahead"),
        (
            b'{"v": 1, "site": "office", "seq": 3, "at": "2026-12-07T10:00:00Z", "x": '
            + b"[" * 200
            + b"]" * 200
            + b"}",
            "deep",
        ),
        (b'{"v": 1, "site": "office", "seq": 3, "pad": "' + b"x" * 60_000 + b'"}', "huge"),
    ],
)
def test_a_hostile_ack_is_refused_with_a_log_line(
    queue: QueueService,
    acker: Acker,
    start_uplink: Callable[..., Uplink],
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
    why: str,
) -> None:
    acker.silent = True
    issue(queue, 10)
    uplink = start_uplink(resend_s=60)
    acker.wait_for(lambda a: a.progress == 10, "the rows")
    acker.ack(6)
    wait_acked(uplink, 6)
    taken = uplink.acks
    with caplog.at_level(logging.WARNING, logger="hub.uplink"):
        acker.connection.publish(CityTopics(acker.site).ack, payload, retain=True)
        with uplink.idle:
            refused = uplink.idle.wait_for(
                lambda: any("refused an ack" in r.getMessage() for r in caplog.records), WAIT_S
            )
        assert refused, f"no log line for the {why} ack"
    assert uplink.acks == taken, why
    assert uplink.acked == 6, why
    acker.ack(7)  # a good one after it still counts
    wait_acked(uplink, 7)
    issue(queue, 1)
    acker.wait_for(lambda a: a.progress == 11, "the next row after the hostile ack")
