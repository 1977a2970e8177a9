"""The branch's uplink: its audit log sent to the city, exactly once, in order.

A branch in a city (``[uplink] host`` set) bridges a few topics of its broker to the
city's (``poradovnik broker config``, docs/broker.md). Over them the hub sends every
row of its audit log (``events``) to the city's consumer, which stores it and
answers with a retained acknowledgement: the highest sequence (``events.id``) it
holds with nothing missing before it. :class:`Uplink` is the hub's side of that, a
go-back-N sender with a durable acknowledgement:

- It publishes batches of consecutive rows (:class:`~sync_agent.city_protocol.HistoryBatch`,
  QoS 1) on the *local* broker's ``city/history``; the bridge carries them. At most
  :data:`WINDOW` rows may be sent and not acknowledged.
- On an acknowledgement it remembers it (``uplink_state``, so retention keeps every
  row above it and a restarted hub goes on from there). An acknowledgement lower than
  the last one (the city's database came back older) sends again from it.
- When no acknowledgement progresses for :data:`RESEND_S` while rows are unacknowledged
  (a batch lost on a bridge that was cut), it sends again from the last one.

Mosquitto's own bridge queue is no substitute: it is bounded, lost with a broker
crash between autosaves, and knows nothing of what the city's database committed.
The branch's ``events`` table is the durable source; docs/city.md says the same.

The sender runs on a thread of its own with its own MQTT connection to the local
broker, and reads the log on connections of its own; the queue only wakes it
(:meth:`Uplink.changed`, which never blocks), and it looks every ``RESEND_S / 2``
anyway (a booking's no-show is written beside the queue's changes). With
``[uplink] catalogue`` it also
applies the city's retained service catalogue (:mod:`hub.catalogue`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Row

from common.settings import MqttSettings
from hub.broker import bridge_status_topic
from hub.catalogue import CatalogueApplier
from hub.model import Change
from hub.service import utc_now
from hub.store import Store
from hub.store.eventids import move_event_ids_past
from hub.store.tables import EVENTS, TICKETS, UPLINK_STATE
from sync_agent.city_protocol import (
    CITY_MAX_PAYLOAD_BYTES,
    HISTORY_BATCH_MAX,
    Catalogue,
    CityTopics,
    HistoryAck,
    HistoryBatch,
    HistoryEvent,
    decode_city,
)
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.protocol import ProtocolError

__all__ = ["RESEND_S", "WINDOW", "Uplink", "UplinkLog"]

log = logging.getLogger(__name__)

WINDOW: Final = 1000
"""Most rows sent and not yet acknowledged by the city."""

RESEND_S: Final = 5.0
"""How long the sender waits for an acknowledgement to progress before it sends again
from the last one."""

LINGER_S: Final = 0.1
"""How long the sender waits after a wake for more rows, so they go in one batch (the
city stores fewer, larger batches; the lag it adds is small beside the city's 2 s)."""

AHEAD_MAX: Final = 2**31
"""Most an acknowledgement may be above this branch's log: ahead by up to this (an older
backup restored), the ids go on past it; further, it is refused, so no mistaken ack
spends the ids (a branch writes a few thousand rows a day, the ids hold ``2**63``)."""

SKIPPED: Final = "skipped"
"""The action of a placeholder for an id the database skipped: PostgreSQL's sequence
leaves a hole when a write is rolled back, and the city's copy has no holes."""

_STATE_ID: Final = 1


class UplinkLog:
    """The audit log as the uplink reads it, and the city's last ack as the hub keeps it."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.clock = clock

    def acked(self) -> int | None:
        """The city's last acknowledgement the hub has kept (``None``: none yet)."""
        with self.store.db.connect() as conn:
            seq = conn.execute(
                select(UPLINK_STATE.c.acked_seq).where(UPLINK_STATE.c.id == _STATE_ID)
            ).scalar()
        return None if seq is None else int(seq)

    def save_ack(self, seq: int) -> None:
        """Keep the city's acknowledgement ``seq`` (retention keeps every row above it)."""
        self._save({"acked_seq": seq, "acked_at": self.clock()})

    def catalogue_version(self) -> int | None:
        """The version of the city's catalogue last applied (``None``: none yet)."""
        with self.store.db.connect() as conn:
            version = conn.execute(
                select(UPLINK_STATE.c.catalogue_version).where(UPLINK_STATE.c.id == _STATE_ID)
            ).scalar()
        return None if version is None else int(version)

    def save_catalogue_version(self, version: int) -> None:
        """Remember that the city's catalogue ``version`` was applied."""
        self._save({"catalogue_version": version})

    def _save(self, values: dict[str, Any]) -> None:
        defaults = {"acked_seq": 0, "acked_at": self.clock()} if self.acked() is None else {}
        self.store.put(UPLINK_STATE, {"id": _STATE_ID}, {**defaults, **values})

    def highest(self) -> int:
        """The highest sequence the city may know: the newest row's or the kept ack's."""
        with self.store.db.connect() as conn:
            newest = conn.execute(select(func.max(EVENTS.c.id))).scalar() or 0
            kept = conn.execute(select(UPLINK_STATE.c.acked_seq)).scalar() or 0
        return max(int(newest), int(kept))

    def move_ids_past(self, seq: int) -> bool:
        """Make the next audit row's id greater than ``seq``; whether the ids moved."""
        with self.store.transaction() as conn:
            return move_event_ids_past(conn, seq)

    def batch(self, after: int, limit: int = HISTORY_BATCH_MAX) -> tuple[int, list[HistoryEvent]]:
        """The lowest sequence held, and up to ``limit`` consecutive rows after ``after``.

        A hole in the ids (a rolled-back write on PostgreSQL) is filled with
        :data:`SKIPPED` placeholders, so the city's copy has none.
        """
        query = (
            select(
                EVENTS,
                TICKETS.c.number,
                TICKETS.c.business_day,
                TICKETS.c.priority,
            )
            .select_from(EVENTS.outerjoin(TICKETS, TICKETS.c.id == EVENTS.c.ticket_id))
            .where(EVENTS.c.id > after)
            .order_by(EVENTS.c.id)
            .limit(limit)
        )
        with self.store.db.connect() as conn:
            first = _first_available(conn)
            rows = conn.execute(query).all()
        events: list[HistoryEvent] = []
        for row in rows:
            # Rows before the first held are gone (pruned): the city may start there.
            expected = events[-1].seq + 1 if events else max(after + 1, first)
            while expected < row.id and len(events) < limit:
                events.append(_skipped(expected, row.at))
                expected += 1
            if len(events) >= limit:
                break
            events.append(history_event(row))
        return first, events


def _first_available(conn: Connection) -> int:
    return int(conn.execute(select(func.min(EVENTS.c.id))).scalar() or 1)


def _skipped(seq: int, at: datetime) -> HistoryEvent:
    return HistoryEvent(seq=seq, at=at, action=SKIPPED, actor="hub")


def history_event(row: Row[Any]) -> HistoryEvent:
    """One row of ``events`` joined with its ticket, as the city gets it.

    A row the schema cannot carry (a detail too large or too deep) goes without its
    detail, marked ``{"truncated": true}``: the city must never wait for it forever.
    """
    values: dict[str, Any] = {
        "seq": row.id,
        "at": row.at,
        "action": row.action,
        "actor": row.actor,
        "ticket_id": row.ticket_id,
        "counter_id": row.counter_id,
        "service": row.service,
        "from_state": row.from_state,
        "to_state": row.to_state,
        "detail": dict(row.detail or {}),
        "number": row.number,
        "business_day": row.business_day,
        "priority": row.priority,
    }
    try:
        return HistoryEvent.model_validate(values)
    except ValidationError:
        return HistoryEvent.model_validate({**values, "detail": {"truncated": True}})


def fitting(site: str, first_available: int, events: list[HistoryEvent]) -> HistoryBatch:
    """The longest batch of ``events``' head that fits the city's payload bound."""
    while True:
        batch = HistoryBatch(site=site, first_available=first_available, events=events)
        if len(batch.encode()) <= CITY_MAX_PAYLOAD_BYTES:
            return batch
        if len(events) == 1:
            event = events[0].model_copy(update={"detail": {"truncated": True}})
            return HistoryBatch(site=site, first_available=first_available, events=[event])
        events = events[: len(events) // 2]


class Uplink:
    """The hub's sender of its audit log to the city (see the module's description).

    ``mqtt`` is the hub's own account at the local broker; ``applier`` applies the
    city's catalogue (``None``: this branch does not take it). Start it with
    :meth:`start`, subscribe :meth:`changed` to the queue, stop it with :meth:`stop`.
    """

    def __init__(
        self,
        store: Store,
        *,
        site: str,
        mqtt: MqttSettings,
        applier: CatalogueApplier | None = None,
        window: int = WINDOW,
        resend_s: float = RESEND_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if window < 1:
            raise ValueError("the window holds at least one row")
        self.site = site
        self.topics = CityTopics(site)
        self.log = UplinkLog(store, clock)
        self.applier = applier
        self.window = window
        self.resend_s = resend_s
        self.clock = clock
        self.connection = MqttConnection(mqtt=mqtt, client_id=f"poradovnik-{site}-uplink")
        """The uplink's own connection to the local broker."""
        self.acked = 0
        """The city's last acknowledgement (0 before the first: send from the oldest row)."""
        self.sent = 0
        """The highest sequence published since the last go-back."""
        self.acks = 0
        """How many acknowledgements were taken (tests wait on it)."""
        self.bridge_up = True
        """Whether the bridge to the city is up, as it says on the local broker (unknown:
        up). While it is down nothing is sent: Mosquitto would only queue it in memory."""
        self._kept: int | None = None
        """The acknowledgement kept in the hub's database."""
        self._progress_at = time.monotonic()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._ack_payload: tuple[str, bytes] | None = None
        self._catalogue_payload: tuple[str, bytes] | None = None
        self._reconnected = False
        self._bridge_news: bool | None = None
        self._thread: threading.Thread | None = None
        self.idle = threading.Condition()
        """Notified after every round of the sender (tests wait on it with a predicate)."""

    # -- hooks ------------------------------------------------------------------

    def changed(self, change: Change) -> None:
        """The queue's listener: wake the sender when the log grew. Never blocks."""
        if change.events:
            self._wake.set()

    def _heard_ack(self, message: Inbound) -> None:
        with self._lock:
            self._ack_payload = (message.topic, message.payload)
        self._wake.set()

    def _heard_catalogue(self, message: Inbound) -> None:
        with self._lock:
            self._catalogue_payload = (message.topic, message.payload)
        self._wake.set()

    def _heard_bridge(self, message: Inbound) -> None:
        if message.payload in (b"0", b"1"):
            with self._lock:
                self._bridge_news = message.payload == b"1"
            self._wake.set()

    def _connected(self) -> None:
        with self._lock:
            self._reconnected = True
        self._wake.set()

    # -- life cycle ------------------------------------------------------------

    def start(self) -> Uplink:
        """Connect to the local broker and start sending; returns at once."""
        self._kept = self.log.acked()
        self.acked = self.sent = self._kept or 0
        self.connection.subscribe(self.topics.ack, self._heard_ack)
        self.connection.subscribe(bridge_status_topic(self.site), self._heard_bridge)
        if self.applier is not None:
            self.connection.subscribe(self.topics.catalogue, self._heard_catalogue)
        self.connection.on_connect(self._connected)
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self._thread.start()
        self.connection.start()
        log.info("uplink of site %s: sending the audit log from %d", self.site, self.acked + 1)
        return self

    def stop(self) -> None:
        """Stop sending and disconnect; what the city has not acknowledged goes next time."""
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.connection.stop()

    # -- the sender ------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing.is_set():
            if self._wake.wait(self.resend_s / 2):
                # Rows come in bursts (an issue, a call, its counter): send them together.
                self._closing.wait(LINGER_S)
            self._wake.clear()
            try:
                self._round()
            except Exception:
                # The database or the broker away: try again at the next wake.
                log.exception("the uplink could not send the audit log; trying again")
                self._closing.wait(self.resend_s)
            with self.idle:
                self.idle.notify_all()

    def _round(self) -> None:
        with self._lock:
            ack, self._ack_payload = self._ack_payload, None
            catalogue, self._catalogue_payload = self._catalogue_payload, None
            reconnected, self._reconnected = self._reconnected, False
            bridge, self._bridge_news = self._bridge_news, None
        if bridge is not None and bridge != self.bridge_up:
            log.info("the bridge to the city is %s", "up" if bridge else "down")
            self.bridge_up = bridge
            # What it queued meanwhile goes first: wait for its acks before going back.
            self._progress_at = time.monotonic()
        if reconnected and self.sent > self.acked:
            # What was in flight on the lost connection may be gone.
            self.sent = self.acked
        if ack is not None:
            self._take_ack(*ack)
        if catalogue is not None:
            self._take_catalogue(*catalogue)
        now = time.monotonic()
        if not self.bridge_up:
            self._progress_at = now
            return
        if self.sent > self.acked and now - self._progress_at >= self.resend_s:
            log.info(
                "no acknowledgement from the city for %.0f s: sending again from %d",
                now - self._progress_at,
                self.acked + 1,
            )
            self.sent = self.acked
            self._progress_at = now
        self._send()

    def _take_ack(self, topic: str, payload: bytes) -> None:
        """Take the city's acknowledgement, or refuse it with a log line."""
        try:
            ack = decode_city(HistoryAck, payload)
        except ProtocolError as exc:
            log.warning("refused an acknowledgement on %s: %s", topic, exc)
            return
        if ack.site != self.site:
            log.warning("refused an acknowledgement for site %r on %s", ack.site[:64], topic)
            return
        highest = self.log.highest()
        if ack.seq > highest + AHEAD_MAX:
            log.warning(
                "refused an acknowledgement of %d: this branch's log ends at %d", ack.seq, highest
            )
            return
        if ack.seq > highest and self.log.move_ids_past(ack.seq):
            # The city holds sequences this database never gave: an older backup was
            # restored without the database it replaced. New rows must not reuse them.
            log.warning(
                "the city holds this branch's log up to %d, beyond its newest row %d "
                "(an older backup restored?): the audit log's ids go on after %d",
                ack.seq,
                highest,
                ack.seq,
            )
        self.acks += 1
        if ack.seq < self.acked:
            log.warning(
                "the city holds this branch's log up to %d only (it held %d): sending again",
                ack.seq,
                self.acked,
            )
            self.sent = ack.seq
        elif ack.seq > self.sent:
            self.sent = ack.seq
        if ack.seq != self._kept:
            self.log.save_ack(ack.seq)  # kept before it counts
            self._kept = ack.seq
        if ack.seq != self.acked:
            self._progress_at = time.monotonic()
            self.acked = ack.seq

    def _take_catalogue(self, topic: str, payload: bytes) -> None:
        """Apply the city's catalogue once per version, and say what was applied."""
        if self.applier is None:
            return
        try:
            catalogue = decode_city(Catalogue, payload)
        except ProtocolError as exc:
            log.warning("refused the city's catalogue on %s: %s", topic, exc)
            return
        done = self.log.catalogue_version()
        if done is not None and catalogue.version <= done:
            log.debug("the city's catalogue %d is applied already", catalogue.version)
            return
        applied = self.applier.apply(catalogue)
        self.log.save_catalogue_version(catalogue.version)
        self.connection.publish(self.topics.catalogue_applied, applied.encode(), retain=True)

    def _send(self) -> None:
        """Publish batches while the window has room and rows wait."""
        while (
            not self._closing.is_set()
            and self.connection.connected.is_set()
            and self.sent - self.acked < self.window
        ):
            room = min(HISTORY_BATCH_MAX, self.window - (self.sent - self.acked))
            first, events = self.log.batch(self.sent, room)
            if not events:
                return
            batch = fitting(self.site, first, events)
            if not self.connection.publish(self.topics.history, batch.encode()):
                return
            if self.sent == self.acked:
                self._progress_at = time.monotonic()
            self.sent = batch.last
