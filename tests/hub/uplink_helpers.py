"""A stand-in for the city's consumer, as the branch's uplink sees it (its tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from common.settings import MqttSettings
from hub.service import QueueService
from hub.store.tables import EVENTS
from hub.uplink import Uplink
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


def start_acker(mqtt: MqttSettings, site: str) -> Acker:
    """An acker logged in with ``mqtt``, subscribed to ``site``'s history (stop its connection)."""
    connection = MqttConnection(mqtt=mqtt, client_id=f"city-stand-in-{site}")
    acker = Acker(connection, site)
    connection.subscribe(CityTopics(site).history, acker.heard)
    connection.start()
    assert connection.subscribed.wait(WAIT_S), "the acker did not subscribe"
    return acker


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
