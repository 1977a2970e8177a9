"""The city's consumer: every branch's history into PostgreSQL exactly once, their live state.

:class:`CityConsumer` logs in to the city's broker with one persistent MQTT v5 session
(:class:`~sync_agent.connection.MqttConnection`) and subscribes to

- ``poradovnik/v1/+/city/history`` (QoS 1): each :class:`HistoryBatch` is stored by
  :meth:`CityStore.store_batch` in one transaction, and only once it is committed the
  retained :class:`HistoryAck` of that branch is published with what the city holds
  (the batches that waited are stored together, in one transaction, by
  :meth:`CityStore.store_batches`);
  the branch resends from there whenever it is behind what it sent;
- :data:`city.live.SUBSCRIPTIONS`, which feed the :class:`~city.live.LiveCity`, when it
  is given one (``poradovnik city`` runs the consumer in a process of its own,
  :mod:`city.process`, without: the web pages' process follows the live state itself,
  :class:`~city.live.LiveFeed`, so that a full queue, below, never holds it back).

Batches wait in a bounded queue (``[city] backlog``) between the MQTT network thread and
the consumer's own thread, which writes them. When it is full the network thread waits
for room (beating its heartbeat): paho acknowledges a message (PUBACK) only once its
callback returned, so the broker, which has at most its ``max_inflight_messages``
unacknowledged with the consumer, holds the next ones in the consumer's persistent
session. Nothing is dropped to be sent again after a gap; the broker is the buffer.

On start and after every reconnect (to the broker or to the database) that thread reads
every branch's progress again and re-publishes every branch's ack, so a branch learns
what the city holds even when an ack was lost, or when a database failover took back what was acked
(the promoted standby may be behind: the ack falls back, and the branch resends).

The database failing (SQLAlchemy's ``OperationalError``, a lost connection) makes the
thread drop its pool and try again after a capped, jittered backoff; nothing is acked
meanwhile. A payload that is not a valid batch, a batch of an unknown branch or of
another site than its topic's, or values the database cannot hold are refused and
logged (at most once a minute per branch and kind); nothing a branch sends can end the
thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from city.live import LiveCity, follow
from city.store import CityError, CityStore, StoreResult, check_batch
from common.liveness import BEAT_S, Heartbeat
from common.logthrottle import ThrottledLog
from common.settings import CitySettings
from sync_agent.backoff import Backoff
from sync_agent.city_protocol import (
    EVERY_BRANCH,
    CityTopics,
    HistoryAck,
    HistoryBatch,
    decode_city,
    site_of,
)
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.protocol import ProtocolError

__all__ = ["CLIENT_ID", "CityConsumer"]

log = logging.getLogger(__name__)

GROUP_MAX: Final = 200
"""Most waiting batches stored in one transaction: one commit for all that waited, so
the city keeps up with many branches sending small batches."""

CLIENT_ID: Final = "poradovnik-city"
"""The consumer's MQTT client id: its persistent session on the city's broker."""

_RESYNC: Final = object()
"""Queued to wake the thread for a resync (the flag says what to do)."""


class CityConsumer:
    """The city's consumer (see the module's docstring); :meth:`start`, then :meth:`stop`.

    ``clock`` stamps the acks. :attr:`heartbeat` beats while the consumer's thread runs
    (also while it waits for the database); the process's watchdog watches it and the
    MQTT network thread's (:attr:`connection`).
    """

    def __init__(
        self,
        settings: CitySettings,
        store: CityStore,
        live: LiveCity | None,
        *,
        client_id: str = CLIENT_ID,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.live = live
        self.clock = clock if clock is not None else lambda: datetime.now(UTC)
        self.connection = MqttConnection(
            mqtt=settings.mqtt,
            client_id=client_id,
            session_expiry_s=settings.session_expiry_h * 3600,
        )
        self.heartbeat = Heartbeat("city consumer")
        self.database_up = threading.Event()
        """Set while the last use of the database succeeded."""
        self.synced = threading.Event()
        """Set once the acks have been published after the latest (re)connect."""
        self._queue: queue.Queue[tuple[str, bytes] | object] = queue.Queue(settings.backlog)
        self._resync = threading.Event()
        self._catalogue_due = threading.Event()
        self._stop = threading.Event()
        self._refusals = ThrottledLog(log)
        self._backoff = Backoff(base_s=0.2, cap_s=settings.reconnect_max_s)
        self._thread = threading.Thread(target=self._run, name="city-consumer", daemon=True)
        self.connection.subscribe(EVERY_BRANCH.history, self._received)
        if live is not None:
            follow(self.connection, live)
        self.connection.on_connect(self.resync)

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> CityConsumer:
        """Start the consumer's thread and the broker connection; returns at once."""
        self.resync()
        self.heartbeat.beat()
        self._thread.start()
        self.connection.start()
        return self

    def stop(self) -> None:
        """Disconnect (the broker keeps the session) and end the thread."""
        self._stop.set()
        self._wake()
        self.connection.stop()
        self._thread.join(timeout=10)

    def resync(self) -> None:
        """Read every branch's progress again and re-publish every ack, soon (any thread)."""
        self.synced.clear()
        self._resync.set()
        self._catalogue_due.set()
        self._wake()

    def publish_catalogue(self) -> None:
        """Publish the stored catalogue to the branches that take it, soon (any thread).

        Branches that do not take it get the retained catalogue cleared.
        """
        self._catalogue_due.set()
        self._wake()

    def _wake(self) -> None:
        # A full queue: the thread is busy with it, and checks the flags between items.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_RESYNC)

    # -- the MQTT network thread -----------------------------------------------------

    @property
    def waiting(self) -> int:
        """History batches received and not yet taken by the consumer's thread."""
        return self._queue.qsize()

    def _received(self, message: Inbound) -> None:
        """A history batch: queue it for the thread, waiting for room while it is full.

        The wait holds back the batch's PUBACK, and with it the broker's next messages
        (see the module's docstring). A stop ends the wait: the batch was never
        acknowledged, so its branch sends it again.
        """
        item = (message.topic, message.payload)
        while not self._stop.is_set():
            self.connection.heartbeat.beat()
            try:
                self._queue.put(item, timeout=BEAT_S)
            except queue.Full:
                self._refusals.log(
                    logging.INFO,
                    "backlog",
                    "%d history batches wait for the database; the broker holds the next",
                    self.settings.backlog,
                )
            else:
                return

    # -- the consumer's thread -------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.heartbeat.beat()
            try:
                self._turn()
            except (OperationalError, DBAPIError) as exc:
                self._database_lost(exc)
            except Exception:  # the thread must outlive any surprise
                log.exception("the city consumer failed unexpectedly; going on")

    def _turn(self) -> None:
        """One round: a resync or the catalogue if due, else the batches waiting."""
        if self._resync.is_set():
            self._resync.clear()
            self._publish_acks()
        if self._catalogue_due.is_set():
            self._catalogue_due.clear()
            self._publish_catalogue()
        try:
            item = self._queue.get(timeout=BEAT_S)
        except queue.Empty:
            return
        items = [item]
        with contextlib.suppress(queue.Empty):
            while len(items) < GROUP_MAX:
                items.append(self._queue.get_nowait())
        self._store([entry for entry in items if isinstance(entry, tuple)])

    def _publish_acks(self) -> None:
        """Publish every branch's ack from what the database holds now."""
        progress = self.store.progress()
        self._database_back()
        for site, held in progress.items():
            self._ack(site, held.seq)
        if self.connection.connected.is_set():
            self.synced.set()
        log.info("published the acks of %d branches", len(progress))

    def _publish_catalogue(self) -> None:
        catalogue = self.store.catalogue()
        branches = self.store.branches()
        self._database_back()
        for branch in branches:
            payload = catalogue.encode() if catalogue is not None and branch.catalogue else b""
            self.connection.publish(CityTopics(branch.site).catalogue, payload, retain=True)

    def _store(self, messages: list[tuple[str, bytes]]) -> None:
        """Store the batches that waited, in one transaction; acknowledge; refuse the bad.

        The acknowledgement of each branch is what the city then holds. If the group
        fails for one bad batch, each is stored alone so that only the bad one is refused.
        """
        batches = [item for topic, payload in messages if (item := self._decoded(topic, payload))]
        if not batches:
            return
        results: list[StoreResult | None]
        try:
            results = list(self.store.store_batches(batches))
        except (CityError, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and _connection_problem(exc):
                raise
            results = [self._store_alone(site, batch) for site, batch in batches]
        self._database_back()
        acks: dict[str, int] = {}
        for (site, batch), result in zip(batches, results, strict=True):
            if result is None:
                continue
            if result.gap:
                self._refusals.log(
                    logging.INFO,
                    (site, "gap"),
                    "branch %s sent %d-%d but the city holds up to %d: asked it to resend",
                    site,
                    batch.first,
                    batch.last,
                    result.ack,
                )
            acks[site] = result.ack
        for site, seq in acks.items():
            self._ack(site, seq)

    def _decoded(self, topic: str, payload: bytes) -> tuple[str, HistoryBatch] | None:
        try:
            site = site_of(topic)
            batch = decode_city(HistoryBatch, payload)
            check_batch(site, batch)
        except ProtocolError as exc:
            self._refuse(topic, "invalid", "refused a history batch on %s: %s", topic, exc)
            return None
        except CityError as exc:
            self._refuse(topic, "refused", "refused a history batch on %s: %s", topic, exc)
            return None
        except Exception as exc:  # a payload no check foresaw
            # Only this payload is refused: the others that waited with it are stored.
            self._refuse(
                topic,
                "unreadable",
                "refused a history batch on %s: %s: %s",
                topic,
                type(exc).__name__,
                exc,
            )
            return None
        return site, batch

    def _store_alone(self, site: str, batch: HistoryBatch) -> StoreResult | None:
        """One batch in a transaction of its own; ``None`` if it is refused."""
        try:
            return self.store.store_batch(site, batch)
        except CityError as exc:
            self._refuse(site, "refused", "refused a history batch of %s: %s", site, exc)
        except DBAPIError as exc:
            if _connection_problem(exc):
                raise
            # Values the database will not take (the checks before missed them): the
            # batch is refused whole, as a bad payload is.
            self._refuse(site, "database", "the database refused a batch of %s: %s", site, exc)
        return None

    def _ack(self, site: str, seq: int) -> None:
        ack = HistoryAck(site=site, seq=seq, at=self.clock())
        self.connection.publish(CityTopics(site).ack, ack.encode(), retain=True)

    def _refuse(self, key: str, kind: str, message: str, *args: object) -> None:
        self._refusals.log(logging.WARNING, (key, kind), message, *args)

    def _database_back(self) -> None:
        if not self.database_up.is_set():
            self.database_up.set()
            self._backoff.reset()

    def _database_lost(self, exc: SQLAlchemyError) -> None:
        """Drop the pool, wait (beating), and resync once the database answers again."""
        first = self.database_up.is_set() or self._backoff.attempt == 0
        self.database_up.clear()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "the city's database %s failed (%s); reconnecting",
            self.store.shown_url,
            reason[0] if reason else type(exc).__name__,
        )
        self.store.reconnect()
        delay = self._backoff.next_delay()
        waited = 0.0
        while waited < delay and not self._stop.is_set():
            self.heartbeat.beat()
            step = min(BEAT_S, delay - waited)
            self._stop.wait(step)
            waited += step
        self.resync()


def _connection_problem(exc: DBAPIError) -> bool:
    """Whether ``exc`` says the database is away (retry) rather than refusing the data."""
    return isinstance(exc, OperationalError) or exc.connection_invalidated
