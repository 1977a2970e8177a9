"""The hub's link to the broker, with a durable outbox for what the hub must not lose.

The hub publishes two kinds of messages. Retained state (``queue/<service>``,
``counter/<id>/state``) needs no keeping: the bridge publishes all of it again after
every (re)connect, from the database. Events do: a ``calls`` message published while
the broker is away would be gone, and a citizen called from the web clerk panel during
an outage would never be called in the lobby. So :class:`HubLink` keeps each *durable*
publication (calls, the retained last call of each counter, acknowledgements to back
offices) in an :class:`~sync_agent.outbox.Outbox`, a SQLite file in ``[data] dir``,
until the broker has acknowledged it, and delivers the outbox in order, one message
at a time, after every reconnect.

While the link is up and the outbox has been sent on it, a durable publication goes
to the broker at once and is written beside it; the delivery thread only forgets
what the broker acknowledged. After a reconnect it sends the whole outbox again,
oldest first, and new publications queue behind it until it has. A message may reach
the broker twice (the acknowledgement lost with the connection): receivers tell a
repeat by its content (a call by its ticket, counter and time).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import AwareDatetime

from common.errors import PoradovnikError
from common.identity import HUB_DEVICE_ID
from common.settings import MqttSettings
from hub.service import utc_now
from sync_agent import protocol as p
from sync_agent.connection import Delivery, Inbound, MqttConnection
from sync_agent.outbox import Entry, Outbox
from sync_agent.presence import Presence

__all__ = ["OUTBOX_FILE", "HubLink", "Publication"]

log = logging.getLogger(__name__)

OUTBOX_FILE = "hub-outbox.sqlite3"
"""The hub's outbox in ``[data] dir``."""

_ACK_TIMEOUT_S = 10.0
"""How long a delivered message waits for the broker's acknowledgement before it is sent
again on a connection that still seems up."""


class Publication(p.Request):
    """A message the hub must not lose, as its outbox keeps it until the broker has it.

    ``msg_id`` is the outbox's key, made by the hub; the topic is the outbox entry's.
    """

    payload: str = ""
    """The message as published (UTF-8 JSON); empty clears a retained topic."""
    retain: bool = False
    correlation: str | None = None
    """MQTT v5 correlation data of a reply, in hex."""
    expires_at: AwareDatetime | None = None
    """When the message expires (the hub's clock): it is published with the MQTT message
    expiry left until then, and dropped undelivered after it."""


class HubLink:
    """The hub's link to the broker: its connection, its presence, its durable outbox.

    Like a device, the hub has a retained ``device/hub/status`` (``online`` after every
    connect, ``offline`` at a stop or, from the broker, when it dies) and health
    (:class:`~sync_agent.presence.Presence`). Unlike a device it sends no requests:
    it hears commands through :meth:`receive` and publishes through
    :meth:`publish`, the bridge's :class:`~hub.bridge.Publisher`.

    ``outbox_path`` is the SQLite file of the outbox (created owner-only when
    missing); ``ack_timeout_s`` how long a delivered message waits for the broker's
    acknowledgement before it is sent again; ``clock`` is the hub's clock, by which a
    waiting message's expiry runs down.
    """

    def __init__(
        self,
        *,
        mqtt: MqttSettings,
        site: str,
        outbox_path: Path,
        ack_timeout_s: float = _ACK_TIMEOUT_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.topics = p.Topics(site)
        """The site's topic names."""
        self.presence = Presence(topics=self.topics, device_id=HUB_DEVICE_ID, role="hub")
        """The hub's retained status and health."""
        self.connection = MqttConnection(
            mqtt=mqtt,
            client_id=f"poradovnik-{site}-{HUB_DEVICE_ID}",
            will=self.presence.will,
        )
        """The underlying connection (tests and diagnostics; the hub uses the methods)."""
        self.connected: threading.Event = self.connection.connected
        """Set while connected to the broker."""
        self.subscribed: threading.Event = self.connection.subscribed
        """Set once the broker has acknowledged the subscriptions: commands reach the hub."""
        self.heartbeat = self.connection.heartbeat
        """The network thread's heartbeat, for the hub's watchdog."""
        self.ack_timeout_s = ack_timeout_s
        self.clock = clock
        try:
            outbox_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            outbox_path.touch(mode=0o600, exist_ok=True)
            outbox_path.chmod(0o600)  # its journal files take the same mode
            # As durable as the hub's database: its commits do not wait for the disk.
            self.publications = Outbox(outbox_path, sync_commits=False)
            """Durable publications not yet acknowledged by the broker, oldest first."""
        except (OSError, sqlite3.Error, RuntimeError) as exc:
            raise PoradovnikError(f"cannot open the hub's outbox {outbox_path}: {exc}") from None
        self._lock = threading.Lock()
        """Orders durable publications: held while one is published and written."""
        self._in_step = False
        """Whether every outbox entry has gone out on the current connection: a new
        durable publication then goes out at once (after all of them, on the same
        connection), else it waits for the delivery thread."""
        self._sent: dict[str, Delivery] = {}
        """The outbox entries published on the current connection, by ``msg_id``."""
        self._generation = 0
        """Counts connections; what was sent on an earlier one no longer counts."""
        self._pub_wake = threading.Event()
        self._pub_closing = threading.Event()
        self._pub_worker: threading.Thread | None = None
        self.presence.attach(self.connection)
        self.connection.on_connection_change(self._connection_changed)

    # -- hooks and subscriptions ---------------------------------------------------

    def receive(self, topic_filter: str, callback: Callable[[Inbound], None]) -> None:
        """Deliver every message matching ``topic_filter`` to ``callback``, whole.

        With its MQTT v5 properties (response topic, correlation data) and retain
        flag: the bridge answers commands with them. As
        :meth:`sync_agent.connection.MqttConnection.subscribe`: made again after every
        reconnect; ``callback`` runs in the network thread.
        """
        self.connection.subscribe(topic_filter, callback)

    def subscribe(self, topic_filter: str, callback: Callable[[str, bytes], None]) -> None:
        """Call ``callback(topic, payload)`` for every message matching ``topic_filter``.

        As :meth:`receive`, for who needs only the topic and the payload.
        """

        def deliver(message: Inbound) -> None:
            callback(message.topic, message.payload)

        self.receive(topic_filter, deliver)

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after every (re)connect, once the hub said it is online."""
        self.connection.on_connect(callback)

    def on_connection_change(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(connected)`` on every connect and loss (network thread)."""
        self.connection.on_connection_change(callback)

    # -- publishing ----------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        correlation: bytes | None = None,
        expiry_s: int | None = None,
        durable: bool = False,
    ) -> None:
        """Publish at QoS 1; a ``durable`` message is kept on disk until the broker has it.

        Durable messages reach the broker in the order they were published, after any
        outage and across a restart of the hub. Others are dropped while the broker is
        away (retained state is published again after a reconnect). ``expiry_s`` is
        the MQTT message expiry, counted from now even while a durable message waits.
        """
        if not durable:
            self.connection.publish(
                topic, payload, retain=retain, correlation=correlation, expiry_s=expiry_s
            )
            return
        now = self.clock()
        publication = Publication(
            msg_id=uuid.uuid4().hex,
            sent_at=now,
            payload=payload.decode(),
            retain=retain,
            correlation=correlation.hex() if correlation is not None else None,
            expires_at=now + timedelta(seconds=expiry_s) if expiry_s is not None else None,
        )
        with self._lock:
            if self._in_step:
                delivery = self.connection.publish_tracked(
                    topic, payload, retain=retain, correlation=correlation, expiry_s=expiry_s
                )
                if delivery is None:  # the connection is going: the outbox sends it later
                    self._in_step = False
                else:
                    self._sent[publication.msg_id] = delivery
            try:
                self.publications.put(topic, publication)
            except BaseException:
                self._sent.pop(publication.msg_id, None)
                raise
        self._pub_wake.set()

    @property
    def undelivered(self) -> int:
        """Durable publications the broker has not acknowledged yet."""
        return len(self.publications)

    # -- the delivery thread -------------------------------------------------------

    def _connection_changed(self, up: bool) -> None:
        with self._lock:  # whatever went out before must go out again on the new one
            self._generation += 1
            self._in_step = False
            self._sent.clear()
        if up:
            self._pub_wake.set()

    def _deliver_publications(self) -> None:
        """Send the outbox on each connection, and forget what the broker acknowledged."""
        while not self._pub_closing.is_set():
            try:
                self._deliver_step()
            except Exception:
                if self._pub_closing.is_set():
                    return
                log.exception("delivering the hub's outbox failed; trying again")
                self._pub_closing.wait(1.0)

    def _deliver_step(self) -> None:
        self._pub_wake.clear()
        if not self.connected.is_set():
            self._pub_wake.wait()  # a connect or stop() wakes us
            return
        with self._lock:
            in_step, generation = self._in_step, self._generation
        if not in_step:
            self._send_all(generation)
            return
        entry = self.publications.head()
        if entry is None:
            self._pub_wake.wait()  # a durable publish, a connection change or stop()
            return
        with self._lock:
            delivery = self._sent.get(entry.msg_id)
        if delivery is not None and delivery.wait(self.ack_timeout_s):
            self._forget_acknowledged(entry.msg_id)
            return
        with self._lock:
            if self._generation == generation and self.connected.is_set():
                if delivery is not None:
                    log.warning("the broker did not acknowledge a message in time; resending")
                self._in_step = False  # send the whole outbox again

    def _forget_acknowledged(self, head: str) -> None:
        """Remove the acknowledged ``head`` and every other entry the broker has too.

        One write for all of them: while presses come fast, this thread takes the
        outbox (which each durable publication waits for) less often.
        """
        with self._lock:
            done = [head, *(m for m, d in self._sent.items() if m != head and d.wait(0))]
        self.publications.remove_all(done)
        with self._lock:
            for msg_id in done:
                self._sent.pop(msg_id, None)

    def _send_all(self, generation: int) -> None:
        """Publish every entry of the outbox, oldest first, then go in step.

        Durable publications made meanwhile join the outbox's end and are sent in
        turn; once none is left, new ones go out at once.
        """
        sent_up_to = 0
        while not self._pub_closing.is_set():
            with self._lock:
                if self._generation != generation:
                    return
                waiting = [e for e in self.publications.entries() if e.seq > sent_up_to]
                if not waiting:
                    self._in_step = True
                    return
            for entry in waiting:
                delivery = self._send(entry)
                with self._lock:
                    if self._generation != generation:
                        return
                    if delivery is not None:
                        self._sent[entry.msg_id] = delivery
                sent_up_to = entry.seq

    def _send(self, entry: Entry) -> Delivery | None:
        """Publish an outbox entry; ``None`` if it was not published.

        An unreadable or expired entry is dropped from the outbox; one that meets a
        lost connection goes out again after the reconnect, with the whole outbox.
        """
        publication = _publication(entry)
        expiry_s = self._expiry_left(publication) if publication is not None else None
        if publication is None or (expiry_s is not None and expiry_s <= 0):
            if publication is not None:
                log.warning("dropped a message for %s: it expired undelivered", entry.topic)
            self.publications.remove(entry.msg_id)
            return None
        correlation = publication.correlation
        return self.connection.publish_tracked(
            entry.topic,
            publication.payload.encode(),
            retain=publication.retain,
            correlation=bytes.fromhex(correlation) if correlation is not None else None,
            expiry_s=expiry_s,
        )

    def _expiry_left(self, publication: Publication) -> int | None:
        """The MQTT message expiry left to ``publication`` now, whole seconds rounded up."""
        if publication.expires_at is None:
            return None
        return math.ceil((publication.expires_at - self.clock()).total_seconds())

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background) and start delivering the outbox."""
        self.connection.start()
        if self._pub_worker is None:
            self._pub_worker = threading.Thread(
                target=self._deliver_publications, name="outbox-hub", daemon=True
            )
            self._pub_worker.start()

    def stop(self) -> None:
        """Stop delivering (what is not delivered stays on disk), then disconnect.

        The hub says ``offline`` first (retained, acknowledged, bounded wait).
        """
        self._pub_closing.set()
        self._pub_wake.set()
        if self._pub_worker is not None:
            self._pub_worker.join(timeout=self.ack_timeout_s + 5.0)
        self.connection.stop(farewell=self.presence.farewell())
        if self._pub_worker is None or not self._pub_worker.is_alive():
            self.publications.close()


def _publication(entry: Entry) -> Publication | None:
    """The outbox entry's publication; ``None`` (logged) if it cannot be read back."""
    try:
        publication = entry.request()
    except p.ProtocolError as exc:
        log.error("dropped an unreadable message for %s: %s", entry.topic, exc.message)
        return None
    if not isinstance(publication, Publication):
        log.error("dropped a %s in the hub's outbox", entry.kind)
        return None
    return publication
