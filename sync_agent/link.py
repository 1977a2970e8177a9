"""A device's link to the hub: status, health, requests, and durable sends via its outbox.

:class:`DeviceLink` is what kiosks, counter panels and displays use, on one
:class:`~sync_agent.connection.MqttConnection`: the device's retained
online/offline status and health (:class:`~sync_agent.presence.Presence`),
:meth:`~DeviceLink.request` (answered or ``None`` within a timeout, never queued)
and :meth:`~DeviceLink.send` (put in the durable
:class:`~sync_agent.outbox.Outbox` first, then delivered in order, one at a time,
until the hub answers).

Threads: the connection's network thread runs every callback; a callback must not
block, and must not call :meth:`DeviceLink.request` (its answer would arrive on the
very thread that waits for it). A :class:`DeviceLink` with an outbox runs one more
thread that delivers it. Nothing here raises into the caller because the broker is
away.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from types import TracebackType

from common.settings import MqttSettings
from sync_agent.backoff import Backoff
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.outbox import Entry, Outbox
from sync_agent.presence import Presence
from sync_agent.protocol import (
    BlockReply,
    CommandReply,
    ErrorReply,
    PartHealth,
    ProtocolError,
    RatingReply,
    Request,
    TicketReply,
    Topics,
    decode,
    load_object,
)

__all__ = ["DeviceLink", "Reply", "decode_reply"]

log = logging.getLogger(__name__)

Reply = ErrorReply | TicketReply | CommandReply | BlockReply | RatingReply
"""What the hub answers a request with."""


def decode_reply(payload: bytes) -> Reply:
    """Check a reply from the hub and pick its model by its fields.

    A reply with ``error`` is an :class:`ErrorReply`, with ``number`` a
    :class:`TicketReply`, with ``counter`` a :class:`CommandReply`, with ``blocks``
    a :class:`BlockReply`, with ``rated`` a :class:`RatingReply`. Raises
    :class:`ProtocolError` for anything else, as :func:`~protocol.decode` does.
    """
    data = load_object(payload)
    if "error" in data:
        return decode(ErrorReply, payload)
    if "number" in data:
        return decode(TicketReply, payload)
    if "counter" in data:
        return decode(CommandReply, payload)
    if "blocks" in data:
        return decode(BlockReply, payload)
    if "rated" in data:
        return decode(RatingReply, payload)
    raise ProtocolError(
        "unknown_reply",
        "a reply has 'error', 'number', 'counter', 'blocks' or 'rated'; this has none",
    )


@dataclass(eq=False)
class _Pending:
    """A request waiting for its reply: set ``done`` with ``reply``, or without on give-up."""

    done: threading.Event = field(default_factory=threading.Event)
    reply: Reply | None = None
    queued: bool = False
    """Whether it is an outbox entry's (:meth:`DeviceLink.send`), not a request's."""


class DeviceLink:
    """One device's link to the hub: status, health, subscriptions, requests, durable sends.

    ``role`` is the device's role (``kiosk``, ``display`` or ``counter``).
    With ``outbox_path`` the link keeps an :class:`~sync_agent.outbox.Outbox`
    in that SQLite file and :meth:`send` works; without, only :meth:`request` does.
    ``reply_timeout_s`` is how long a sent command waits for its reply before it is
    sent again, and the default for :meth:`request`. ``backoff_base_s`` and
    ``backoff_cap_s`` shape the reconnect delays (``rng`` seeds their jitter).

    The retained ``device/<id>/status`` says ``online`` after every connect and
    ``offline`` after :meth:`stop`, or from the broker (the last will) when the
    device dies. ``client_id`` defaults to ``poradovnik-<site>-<device_id>``.
    """

    def __init__(
        self,
        *,
        mqtt: MqttSettings,
        site: str,
        device_id: str,
        role: str,
        outbox_path: Path | None,
        reply_timeout_s: float = 5.0,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        rng: Random | None = None,
        keepalive_s: int = 15,
        stop_timeout_s: float = 2.0,
        client_id: str | None = None,
    ) -> None:
        self.topics = Topics(site)
        """The site's topic names."""
        self.device_id = device_id
        self.role = role
        self.reply_timeout_s = reply_timeout_s
        self.presence = Presence(topics=self.topics, device_id=device_id, role=role)
        """The device's retained status and health."""
        self.status_topic = self.presence.status_topic
        self.reply_topic = self.topics.device_reply(device_id)
        self.connection = MqttConnection(
            mqtt=mqtt,
            client_id=client_id or f"poradovnik-{site}-{device_id}",
            will=self.presence.will,
            keepalive_s=keepalive_s,
            backoff=Backoff(backoff_base_s, backoff_cap_s, rng=rng),
            stop_timeout_s=stop_timeout_s,
        )
        """The underlying connection (for hooks and raw publishing)."""
        self.connected: threading.Event = self.connection.connected
        """Set while connected to the broker."""

        self._outbox = Outbox(outbox_path) if outbox_path is not None else None
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._early: dict[str, _Pending] = {}
        """Commands :meth:`send` published ahead of their synced write, by ``msg_id``."""
        self._answered: set[str] = set()
        """Outbox entries the hub has answered, until they are removed (a synced write):
        a new command need not wait behind them."""
        self._send_lock = threading.Lock()
        self._reply_hooks: list[Callable[[Request, Reply], None]] = []
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._worker: threading.Thread | None = None

        self.connection.subscribe(self.reply_topic, self._on_reply_message)
        self.presence.attach(self.connection)
        self.connection.on_connection_change(self._connection_changed)

    # -- hooks and subscriptions ---------------------------------------------------

    def on_connection_change(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(connected)`` on every connect and loss (an offline LED, say).

        It runs in the network thread, must not block, and its exceptions are logged.
        """
        self.connection.on_connection_change(callback)

    def on_reply(self, callback: Callable[[Request, Reply], None]) -> None:
        """Call ``callback(command, reply)`` when a command from :meth:`send` is answered.

        The reply may be an :class:`ErrorReply`: that too is an answer, and ends the
        command. It runs in the outbox thread; its exceptions are logged.
        """
        with self._lock:
            self._reply_hooks.append(callback)

    def subscribe(self, topic_filter: str, callback: Callable[[str, bytes], None]) -> None:
        """Call ``callback(topic, payload)`` for every message matching ``topic_filter``.

        Subscriptions are made again after every reconnect, so retained state
        (``queue/…``, ``counter/…/state``) arrives again. The callback runs in the
        network thread, must not block, and its exceptions are logged.
        """

        def deliver(message: Inbound) -> None:
            callback(message.topic, message.payload)

        self.connection.subscribe(topic_filter, deliver)

    # -- publishing ----------------------------------------------------------------

    @property
    def problem(self) -> str | None:
        """Why the broker refuses this device something (see :attr:`Presence.problem`)."""
        return self.presence.problem

    def publish_health(self, parts: Mapping[str, PartHealth]) -> None:
        """Publish the device's hardware health, retained; it is re-published on reconnect.

        While the broker refuses the device something (:attr:`problem`), the health
        also has the part ``mqtt`` in state ``error`` saying what.
        """
        self.presence.publish_health(parts)

    def request(self, topic: str, payload: Request, timeout_s: float | None = None) -> Reply | None:
        """Ask the hub and wait for the answer; ``None`` if none within ``timeout_s``.

        Not durable: nothing is queued. ``None`` also comes at once when not
        connected, or as soon as the connection is lost while waiting, so a kiosk can
        fall back to issuing offline without delay. The request carries an MQTT v5
        message expiry of ``timeout_s`` (rounded up), so a broker does not hand it to
        the hub after the caller gave up. Default timeout: ``reply_timeout_s``.

        Raises :class:`RuntimeError` when called from a callback of this link: the
        reply would have to arrive on the thread that waits for it.
        """
        if self.connection.in_network_thread():
            raise RuntimeError("request() cannot wait for a reply inside a callback of its link")
        timeout = self.reply_timeout_s if timeout_s is None else timeout_s
        msg_id = payload.msg_id
        pending = _Pending()
        with self._lock:
            if not self.connected.is_set() or self._closing.is_set():
                return None
            if msg_id in self._pending:
                raise ValueError(f"a request with msg_id {msg_id!r} is already waiting")
            self._pending[msg_id] = pending
        try:
            sent = self._publish_request(
                topic, payload.encode(), msg_id, expiry_s=max(1, math.ceil(timeout))
            )
            if sent:
                pending.done.wait(timeout)
        finally:
            self._forget(msg_id, pending)
        return pending.reply

    def send(self, topic: str, payload: Request) -> str:
        """Queue a command durably and return its ``msg_id`` once it is on disk.

        It is delivered after those queued before it, and sent again (same
        ``msg_id``) until the hub answers; then :meth:`on_reply` callbacks get the
        answer. The hub de-duplicates by ``msg_id``, so each takes effect once.
        When nothing unanswered is queued before it and the link is up, the command
        goes on the wire while it is being written to disk, so a press waits for one of
        the two, not for both (nor for the removal of a command just answered). Raises
        :class:`RuntimeError` if the link has no outbox, or was stopped.
        """
        if self._outbox is None:
            raise RuntimeError("this DeviceLink has no outbox (outbox_path=None)")
        with self._send_lock:  # the emptiness check and the write, one send at a time
            early = self._send_early(topic, payload)
            try:
                msg_id = self._outbox.put(topic, payload)
            except BaseException:
                if early is not None:
                    self._forget(payload.msg_id, early)
                    with self._lock:
                        self._early.pop(payload.msg_id, None)
                        self._answered.discard(payload.msg_id)
                raise
        self._wake.set()
        return msg_id

    def _send_early(self, topic: str, payload: Request) -> _Pending | None:
        """Publish a command ahead of its synced write if nothing is queued before it.

        The outbox thread then waits for this publication's reply instead of
        publishing the command itself; order is kept because the outbox is empty.
        """
        assert self._outbox is not None
        msg_id = payload.msg_id
        pending = _Pending(queued=True)
        with self._lock:
            if (
                not self.connected.is_set()
                or self._closing.is_set()
                or msg_id in self._pending
                or len(self._outbox) > len(self._answered)
            ):
                return None
            self._pending[msg_id] = self._early[msg_id] = pending
        if self._publish_request(topic, payload.encode(), msg_id, expiry_s=None):
            return pending
        self._forget(msg_id, pending)
        with self._lock:
            self._early.pop(msg_id, None)
        return None

    @property
    def queued(self) -> int:
        """How many sent commands still wait for their answer (0 without an outbox)."""
        return 0 if self._outbox is None else len(self._outbox)

    def _publish_request(
        self, topic: str, payload: bytes, msg_id: str, *, expiry_s: int | None
    ) -> bool:
        return self.connection.publish(
            topic,
            payload,
            response_topic=self.reply_topic,
            correlation=msg_id.encode(),
            expiry_s=expiry_s,
        )

    def _forget(self, msg_id: str, pending: _Pending) -> None:
        with self._lock:
            if self._pending.get(msg_id) is pending:
                del self._pending[msg_id]

    # -- network thread callbacks --------------------------------------------------

    def _connection_changed(self, up: bool) -> None:
        if up:
            self._wake.set()
            return
        with self._lock:  # the waiting requests will get no reply on this connection
            for pending in self._pending.values():
                pending.done.set()

    def _on_reply_message(self, message: Inbound) -> None:
        try:
            reply = decode_reply(message.payload)
        except ProtocolError as exc:
            log.warning("dropped a reply on %s: %s: %s", message.topic, exc.code, exc.message)
            return
        if message.correlation is not None:
            key: str | None = message.correlation.decode("utf-8", "replace")
        else:
            key = reply.msg_id
        if key is None:
            log.warning("dropped a reply without correlation data or msg_id")
            return
        if reply.msg_id is not None and reply.msg_id != key:
            log.warning("dropped a reply for msg_id %r with correlation data %r", reply.msg_id, key)
            return
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                log.debug("a reply to %s came when nothing waited for it (late or repeated)", key)
                return
            if pending.queued and pending.reply is None:
                self._answered.add(key)
            pending.reply = reply
            pending.done.set()

    # -- the outbox thread ---------------------------------------------------------

    def _deliver(self) -> None:
        """Send the outbox's head until answered, then the next; until stop()."""
        while not self._closing.is_set():
            try:
                self._deliver_head()
            except Exception:
                if self._closing.is_set():
                    return
                log.exception("delivering the outbox failed; trying again")
                self._closing.wait(self.reply_timeout_s)

    def _deliver_head(self) -> None:
        assert self._outbox is not None
        self._wake.clear()
        entry = self._outbox.head()
        with self._lock:
            ready = entry is not None and self.connected.is_set() and not self._closing.is_set()
            early = self._early.pop(entry.msg_id, None) if entry is not None else None
            lost = early is not None and early.done.is_set() and early.reply is None
            if entry is not None and early is not None and (lost or not ready):
                # Published, then the connection went: it is sent again once up.
                if self._pending.get(entry.msg_id) is early:
                    del self._pending[entry.msg_id]
                early = None
            pending = early or _Pending(queued=True)
            if ready and entry is not None:
                self._pending[entry.msg_id] = pending
        if not ready or entry is None:
            self._wake.wait()  # a send(), a connect, or stop() wakes us
            return
        try:
            if early is None:
                log.debug("sending %s (%s) to %s", entry.msg_id, entry.kind, entry.topic)
                self._publish_request(entry.topic, entry.payload, entry.msg_id, expiry_s=None)
            # A lost connection or stop() ends the wait early (without a reply).
            pending.done.wait(self.reply_timeout_s)
        finally:
            self._forget(entry.msg_id, pending)
        if pending.reply is None:
            if self.connected.is_set() and not self._closing.is_set():
                log.info(
                    "no reply to %s in %.1f s; sending it again", entry.msg_id, self.reply_timeout_s
                )
            return
        try:
            self._outbox.remove(entry.msg_id)
        finally:
            with self._lock:
                self._answered.discard(entry.msg_id)
        self._complete(entry, pending.reply)

    def _complete(self, entry: Entry, reply: Reply) -> None:
        try:
            command = entry.request()
        except ProtocolError as exc:
            log.error("answered command %s cannot be read back: %s", entry.msg_id, exc.message)
            return
        with self._lock:
            hooks = list(self._reply_hooks)
        for hook in hooks:
            try:
                hook(command, reply)
            except Exception:
                log.exception("an on-reply callback failed for %s", entry.msg_id)

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Connect (in the background) and start delivering the outbox."""
        self.connection.start()
        if self._outbox is not None and self._worker is None:
            self._worker = threading.Thread(
                target=self._deliver, name=f"outbox-{self.device_id}", daemon=True
            )
            self._worker.start()

    def stop(self) -> None:
        """Say ``offline`` (retained, acknowledged, bounded wait), disconnect, close the outbox.

        Unanswered commands stay in the outbox file for the next start. Stopping twice
        is harmless.
        """
        self._closing.set()
        self._wake.set()
        with self._lock:
            for pending in self._pending.values():
                pending.done.set()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
        self.connection.stop(farewell=self.presence.farewell())
        if self._outbox is not None and (self._worker is None or not self._worker.is_alive()):
            self._outbox.close()

    def __enter__(self) -> DeviceLink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
