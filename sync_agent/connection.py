"""One MQTT v5 connection that keeps itself up: reconnects, backoff, acknowledgements.

:class:`MqttConnection` is one reconnecting MQTT v5 connection (paho-mqtt 2):
credentials and TLS from :class:`~common.settings.MqttSettings`, a retained last
will, reconnects with capped exponential backoff and full jitter (paho's built-in
reconnect has no jitter), subscriptions re-made after every reconnect, and a last
word confirmed by the broker before a clean disconnect. It knows nothing of the
protocol's payloads: a device's link (:mod:`sync_agent.link`) and the hub's
(:mod:`hub.publications`) are built on it. :class:`Delivery` follows one message
until the broker acknowledges it.

Threads: each :class:`MqttConnection` runs one network thread, which also runs
every callback (subscriptions, hooks); a callback must not block. Nothing here
raises into the caller because the broker is away.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from common.liveness import BEAT_S, Heartbeat
from common.logthrottle import ThrottledLog
from common.settings import MqttSettings
from sync_agent.backoff import Backoff
from sync_agent.properties import PublishProperties

__all__ = ["QOS", "Delivery", "Inbound", "LastWill", "MqttConnection"]

log = logging.getLogger(__name__)

QOS = 1
"""Every message of the protocol goes at least once."""

_LOOP_TIMEOUT_S = 0.2
"""The longest the network thread waits in ``select``; bounds how soon it notices stop()."""

_CONNECT_TIMEOUT_S = 5.0
"""How long opening the TCP (and TLS) connection may take."""

_MAX_INFLIGHT = 200
"""Unacknowledged QoS 1 messages a connection may have on the wire at once."""

_STABLE_AFTER_S = 10.0
"""A connection that lasted this long resets the backoff; a shorter one (say, two devices
fighting over one client id) lets the delays keep growing."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message the broker delivered to a subscription."""

    topic: str
    payload: bytes
    retain: bool
    """Whether it is a retained message (state), delivered because we subscribed."""
    response_topic: str | None = None
    """MQTT v5 response topic: where the sender wants the answer."""
    correlation: bytes | None = None
    """MQTT v5 correlation data: to be returned with the answer."""
    expiry_s: int | None = None
    """MQTT v5 message expiry left, in seconds, as the broker counted it down (``None``:
    the message has none)."""


@dataclass(frozen=True, slots=True)
class LastWill:
    """A retained QoS 1 message the broker publishes when the connection dies uncleanly."""

    topic: str
    payload: bytes


def _check_filter(topic_filter: str) -> None:
    """Refuse a topic filter the broker would refuse (empty, misplaced ``#`` or ``+``)."""
    levels = topic_filter.split("/")
    bad = not topic_filter or any(
        ("#" in level and (level != "#" or i != len(levels) - 1)) or ("+" in level and level != "+")
        for i, level in enumerate(levels)
    )
    if bad:
        raise ValueError(f"invalid MQTT topic filter {topic_filter!r}")


class _Acks:
    """What each packet awaiting the broker's acknowledgement carried, to name refusals.

    A PUBACK or SUBACK carries only the packet id and reason codes; this remembers the
    topic of each publication and the filters of each subscription by packet id, so a
    refusal ("Not authorized") can name them. An acknowledgement may come before
    :meth:`sent` (another thread published, the network thread read the answer first):
    its refusals wait here until :meth:`sent` names them. Thread-safe.
    """

    _MAX_EARLY = 256
    """Refusals of packets never named (a farewell) kept at most; older are forgotten."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[int, tuple[str, ...]] = {}
        self._early: dict[int, list[ReasonCode]] = {}

    def sent(self, mid: int, *names: str) -> list[tuple[str, ReasonCode]]:
        """Packet ``mid`` carries ``names``; returns what of it was already refused."""
        with self._lock:
            codes = self._early.pop(mid, None)
            if codes is None:
                self._names[mid] = names
                return []
        return _refused(names, codes)

    def acked(self, mid: int, codes: list[ReasonCode]) -> list[tuple[str, ReasonCode]]:
        """The broker answered packet ``mid`` with ``codes``: the names it refused."""
        with self._lock:
            names = self._names.pop(mid, None)
            if names is None:
                if any(code.is_failure for code in codes):
                    if len(self._early) >= self._MAX_EARLY:
                        self._early.clear()
                    self._early[mid] = codes
                return []
        return _refused(names, codes)

    def clear(self) -> None:
        """Forget everything: a new connection starts with no packet awaiting an answer."""
        with self._lock:
            self._names.clear()
            self._early.clear()


def _refused(names: tuple[str, ...], codes: list[ReasonCode]) -> list[tuple[str, ReasonCode]]:
    return [(name, code) for name, code in zip(names, codes, strict=False) if code.is_failure]


def _ignore(*_args: Any) -> None:
    """Stands in for paho's external-loop write hook (see :class:`MqttConnection`)."""


def _published(info: paho.MQTTMessageInfo) -> bool | None:
    """Whether the broker acknowledged ``info``'s message; ``None`` if it never will."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return None


class MqttConnection:
    """One MQTT v5 connection to the broker that keeps itself up, for any role.

    :meth:`start` returns at once; a network thread of its own connects, waits a
    :class:`~sync_agent.backoff.Backoff` delay after each failure or
    loss, and connects again until :meth:`stop`. The delays grow until a connection
    has lasted a while (a broker that accepts and at once drops us is no success).
    After every connect it re-makes all subscriptions (so retained state arrives
    again) and runs the :meth:`on_connect` hooks. Every session starts clean: what
    matters across outages is either retained on the broker or kept in an outbox;
    unless ``session_expiry_s`` asks for a persistent one (the city's consumer of the
    branches' history, which the broker then keeps for it while it is away).

    ``client_id`` must be unique among the broker's clients: a second connection
    with the same id takes over the first. ``will``, if given, is set as the last
    will (retained, QoS 1).
    """

    def __init__(
        self,
        *,
        mqtt: MqttSettings,
        client_id: str,
        will: LastWill | None = None,
        keepalive_s: int = 15,
        backoff: Backoff | None = None,
        stop_timeout_s: float = 2.0,
        session_expiry_s: int = 0,
    ) -> None:
        self.settings = mqtt
        self.session_expiry_s = session_expiry_s
        """Above 0, the session is persistent: the broker keeps the subscriptions, and
        the QoS 1 messages for them, this many seconds while the connection is away."""
        self.client_id = client_id
        self.keepalive_s = keepalive_s
        """Seconds between keepalive pings: the broker declares us dead after 1.5 times this."""
        self.stop_timeout_s = stop_timeout_s
        """How long :meth:`stop` waits for the broker to acknowledge the last word."""
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        """Set once the broker has acknowledged this connection's subscriptions: from
        then on, messages on them reach us (a hub is ready to serve)."""
        self._subscribe_mid: int | None = None
        """Set while the broker has accepted the connection (CONNACK) and it is not lost."""

        self._backoff = backoff if backoff is not None else Backoff()
        self._lock = threading.Lock()
        self._subscriptions: dict[str, list[Callable[[Inbound], None]]] = {}
        self._connect_hooks: list[Callable[[], None]] = []
        self._change_hooks: list[Callable[[bool], None]] = []
        self._refusal_hooks: list[Callable[[str, str, str], None]] = []
        self._acks = _Acks()
        self._refused: queue.SimpleQueue[tuple[str, str, ReasonCode]] = queue.SimpleQueue()
        self._refusals = ThrottledLog(log)
        self._closing = threading.Event()
        self._farewell: LastWill | None = None
        self._connected_at: float | None = None
        self._unreachable = False
        """When the broker accepted the current connection (monotonic clock)."""
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.heartbeat = Heartbeat("MQTT network thread")
        """Beaten by the network thread at least every :data:`~common.liveness.BEAT_S`
        while it runs: connected, connecting or waiting to reconnect; silent when it
        hangs (in a callback, say). A role's watchdog watches it."""

        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.suppress_exceptions = True  # our callbacks catch their own; belt and braces
        # A hub answers a command with a call, a reply and state: more than paho's
        # default of 20 unacknowledged messages would hold it back.
        client.max_inflight_messages_set(_MAX_INFLIGHT)
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.connect_timeout = _CONNECT_TIMEOUT_S
        if mqtt.username is not None:
            password = mqtt.password.get_secret_value() if mqtt.password is not None else None
            client.username_pw_set(mqtt.username, password)
        if mqtt.tls:
            client.tls_set(ca_certs=str(mqtt.ca_file) if mqtt.ca_file is not None else None)
        if will is not None:
            client.will_set(will.topic, will.payload, qos=QOS, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        # We run paho's loop in our own thread (to have jittered reconnects), not with
        # loop_start(). Without a registered write hook paho would then write to the
        # socket from whichever thread publishes, racing the network thread. With one,
        # publish() only queues the packet and wakes the network thread, which writes.
        client.on_socket_register_write = _ignore
        self._client = client

    # -- configuration -------------------------------------------------------------

    def subscribe(self, topic_filter: str, callback: Callable[[Inbound], None]) -> None:
        """Deliver messages matching ``topic_filter`` to ``callback``, from now on.

        The subscription (QoS 1) is made at once when connected and again after every
        reconnect, so retained messages arrive again each time. ``callback`` runs in
        the network thread; its exceptions are logged. A message matching several
        filters goes to each of their callbacks (and, with overlapping subscriptions,
        possibly more than once: callbacks must be idempotent, as QoS 1 requires anyway).
        """
        _check_filter(topic_filter)
        with self._lock:
            callbacks = self._subscriptions.setdefault(topic_filter, [])
            callbacks.append(callback)
            now = len(callbacks) == 1 and self.connected.is_set()
        if now:
            _, mid = self._client.subscribe(topic_filter, options=SubscribeOptions(qos=QOS))
            if mid is not None:
                self._tell_refused("subscribe to", self._acks.sent(mid, topic_filter))

    def on_connect(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after every (re)connect, once the subscriptions are made.

        It runs in the network thread with :attr:`connected` already set: the place to
        publish retained state again (online status, health).
        """
        with self._lock:
            self._connect_hooks.append(callback)

    def on_connection_change(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(True)`` after each connect and ``callback(False)`` after each loss.

        It runs in the network thread; its exceptions are logged.
        """
        with self._lock:
            self._change_hooks.append(callback)

    def on_refused(self, callback: Callable[[str, str, str], None]) -> None:
        """Call ``callback(action, topic, reason)`` when the broker refuses something.

        ``action`` is ``"publish on"`` (a PUBACK with a failure reason code, such as
        Mosquitto's 0x87 *Not authorized* when its ACL denies the topic; the message is
        dropped) or ``"subscribe to"`` (a SUBACK refusing a filter). Every refusal is
        also logged, at most once a minute per topic. The callback runs in the network
        thread (soon after the answer, outside paho's callbacks, so it may publish),
        must not block, and its exceptions are logged.
        """
        with self._lock:
            self._refusal_hooks.append(callback)

    # -- publishing ----------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        response_topic: str | None = None,
        correlation: bytes | None = None,
        expiry_s: int | None = None,
    ) -> bool:
        """Publish at QoS 1 if connected; say whether the message went out to the broker.

        ``False`` means it was dropped: not connected (nothing is queued across an
        outage here; durable messages belong in an outbox). ``response_topic`` and
        ``correlation`` are the MQTT v5 request/response properties; ``expiry_s`` is
        the message expiry interval (the broker drops it undelivered after that).
        Raises :class:`ValueError` only for an invalid topic.
        """
        delivery = self.publish_tracked(
            topic,
            payload,
            retain=retain,
            response_topic=response_topic,
            correlation=correlation,
            expiry_s=expiry_s,
        )
        return delivery is not None

    def publish_tracked(
        self,
        topic: str,
        payload: bytes,
        *,
        retain: bool = False,
        response_topic: str | None = None,
        correlation: bytes | None = None,
        expiry_s: int | None = None,
    ) -> Delivery | None:
        """:meth:`publish`, and follow the message: ``None`` if it was dropped.

        The :class:`Delivery` tells when the broker has acknowledged the message (for
        a durable outbox, which may forget a message only then).
        """
        properties: Properties | None = None
        if response_topic is not None or correlation is not None or expiry_s is not None:
            properties = PublishProperties(
                expiry_s=expiry_s, response_topic=response_topic, correlation=correlation
            )
        if not self.connected.is_set():
            log.debug("not connected; dropped a message for %s", topic)
            return None
        info = self._client.publish(topic, payload, qos=QOS, retain=retain, properties=properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("could not publish to %s: %s", topic, paho.error_string(info.rc))
            return None
        self._tell_refused("publish on", self._acks.sent(info.mid, topic))
        if self.in_network_thread():
            # From inside a callback paho only queues; write now, not once the callback
            # (a hub command: its call, then its reply and states) has run to its end.
            # Only this thread writes while a callback runs. Not through loop_write():
            # on a write error it runs paho's disconnect handling, which waits for the
            # callback lock this thread holds (a hang for good). A broken connection
            # is found again, and handled, by the loop once the callback has returned.
            self._client._packet_write()
        return Delivery(info, self.connected)

    def in_network_thread(self) -> bool:
        """Whether the caller runs in this connection's network thread (in a callback)."""
        return self._thread is not None and threading.current_thread() is self._thread

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Start the network thread; it connects, and reconnects, by itself."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("a stopped connection cannot be started again")
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"mqtt-{self.client_id}", daemon=True
            )
        self.heartbeat.beat()  # its time to start counts from now, not from __init__
        self._thread.start()

    def stop(self, farewell: LastWill | None = None) -> None:
        """Disconnect cleanly and end the network thread. Stopping twice is harmless.

        If connected, ``farewell`` (typically the same news as the will, such as an
        ``offline`` status) is published retained first, and the broker's
        acknowledgement awaited for up to :attr:`stop_timeout_s`: a clean disconnect
        makes the broker discard the will.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            thread = self._thread
        self._farewell = farewell
        self._closing.set()
        if thread is not None:
            thread.join(timeout=self.stop_timeout_s + _CONNECT_TIMEOUT_S + 1.0)
            if thread.is_alive():
                log.warning("the MQTT network thread did not end in time")

    # -- the network thread --------------------------------------------------------

    def _run(self) -> None:
        """Connect, serve the connection until it ends, wait, again; until stop()."""
        while not self._closing.is_set():
            self.heartbeat.beat()
            self._connected_at = None
            try:
                if self._connect():
                    self._serve()
            except Exception:  # the network thread must outlive any surprise
                log.exception("the MQTT connection failed unexpectedly; reconnecting")
                self._drop_socket()
            self._lost()
            up_since = self._connected_at
            if up_since is not None and time.monotonic() - up_since >= _STABLE_AFTER_S:
                self._backoff.reset()
            if self._closing.is_set():
                break
            delay = self._backoff.next_delay()
            log.debug("next connection attempt in %.2f s", delay)
            self._pause(delay)
        self._drop_socket()  # only open if stop() could not end the connection in time

    def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds, or until stop(), beating the heartbeat meanwhile."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            self.heartbeat.beat()
            if self._closing.wait(min(left, BEAT_S)):
                return

    def _connect(self) -> bool:
        """Open the connection and send CONNECT; ``False`` (logged) when that fails."""
        host, port = self.settings.host, self.settings.port
        try:
            self._client.connect(
                host,
                port,
                keepalive=self.keepalive_s,
                clean_start=self.session_expiry_s == 0,
                properties=self._connect_properties(),
            )
        except OSError as exc:
            # Once per outage at WARNING, then quietly, or the journal fills up.
            log.log(
                logging.DEBUG if self._unreachable else logging.WARNING,
                "cannot reach the MQTT broker at %s:%d: %s; retrying",
                host,
                port,
                exc,
            )
            self._unreachable = True
            return False
        except Exception:
            log.exception("connecting to the MQTT broker at %s:%d failed", host, port)
            return False
        return True

    def _connect_properties(self) -> Properties | None:
        """The CONNECT's properties: the session's expiry when it is persistent."""
        if self.session_expiry_s == 0:
            return None
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.session_expiry_s
        return properties

    def _serve(self) -> None:
        """Run paho's loop until the connection ends, or stop() asks to end it."""
        while True:
            self.heartbeat.beat()
            if self._closing.is_set():
                self._say_goodbye()
                return
            served = self._client.loop(timeout=_LOOP_TIMEOUT_S)
            self._report_refusals()
            if served != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return

    def _say_goodbye(self) -> None:
        """Publish the farewell, wait for its PUBACK (bounded), then DISCONNECT."""
        deadline = time.monotonic() + self.stop_timeout_s
        farewell = self._farewell
        if farewell is not None and self.connected.is_set():
            info = self._client.publish(farewell.topic, farewell.payload, qos=QOS, retain=True)
            while (done := _published(info)) is False and time.monotonic() < deadline:
                if self._client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
            if not done:
                log.warning("the broker did not acknowledge the last message before the stop")
        self._client.disconnect()
        # Until paho has sent DISCONNECT and closed the socket (no later: a loop on a
        # closed client only logs that it is not connected).
        while time.monotonic() < deadline and self._client.socket() is not None:
            if self._client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break

    def _drop_socket(self) -> None:
        """Close the socket under paho, if any: the broker then sees us gone."""
        with contextlib.suppress(Exception):
            sock = self._client.socket()
            if sock is not None:
                sock.close()

    def _lost(self) -> None:
        """Note the end of a connection (once) and tell the hooks."""
        if not self.connected.is_set():
            return
        self.connected.clear()
        self.subscribed.clear()
        if not self._closing.is_set():
            log.warning("lost the connection to the MQTT broker; reconnecting")
        self._notify(up=False)

    def _notify(self, *, up: bool) -> None:
        with self._lock:
            hooks = list(self._change_hooks)
        for hook in hooks:
            try:
                hook(up)
            except Exception:
                log.exception("a connection-change callback failed")

    # -- paho callbacks (network thread) -------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if reason_code.is_failure:
                log.warning("the MQTT broker refused the connection: %s", reason_code)
                return
            # Whatever paho still holds from the last connection would be resent now;
            # requests must not be (their callers gave up), and an outbox resends its own.
            client.drop_out_messages()
            self._acks.clear()
            # Small messages that someone waits for: send each at once (no Nagle).
            sock = client.socket()
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                # SUBSCRIBE goes out before anything another thread may publish once
                # `connected` is set, so no reply can reach the broker before the
                # subscription that routes it to us.
                filters = list(self._subscriptions)
                if filters:
                    _, self._subscribe_mid = client.subscribe(
                        [(f, SubscribeOptions(qos=QOS)) for f in filters]
                    )
                    if self._subscribe_mid is not None:
                        self._acks.sent(self._subscribe_mid, *filters)
                else:
                    self.subscribed.set()
                self.connected.set()
                hooks = list(self._connect_hooks)
            self._connected_at = time.monotonic()
            self._unreachable = False
            log.info(
                "connected to the MQTT broker at %s:%d", self.settings.host, self.settings.port
            )
            for hook in hooks:
                try:
                    hook()
                except Exception:
                    log.exception("an on-connect callback failed")
            self._notify(up=True)
        except Exception:
            log.exception("handling CONNACK failed")

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        try:
            self._tell_refused("subscribe to", self._acks.acked(mid, reason_codes))
        finally:
            if mid == self._subscribe_mid:
                self.subscribed.set()

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._tell_refused("publish on", self._acks.acked(mid, [reason_code]))

    def _tell_refused(self, action: str, refused: list[tuple[str, ReasonCode]]) -> None:
        """Note refusals for :meth:`_report_refusals`.

        Called inside paho's callbacks (which hold paho's locks) or by a publishing
        thread: the hooks run later, in the network thread, where they may publish.
        """
        for topic, code in refused:
            self._refused.put((action, topic, code))

    def _report_refusals(self) -> None:
        """Log each noted refusal (throttled per topic) and tell the :meth:`on_refused` hooks."""
        if self._refused.empty():
            return
        with self._lock:
            hooks = list(self._refusal_hooks)
        while not self._refused.empty():
            action, topic, code = self._refused.get_nowait()
            reason = f"{code.getName()} (0x{code.value:02x})"
            self._refusals.log(
                logging.ERROR,
                (action, topic),
                "the MQTT broker refuses account %r to %s %s: %s; its ACL lets an account "
                "use only the topics of the device (and counters) it was made for",
                self.settings.username,
                action,
                topic,
                reason,
            )
            for hook in hooks:
                try:
                    hook(action, topic, reason)
                except Exception:
                    log.exception("a refusal callback failed")

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            if self.connected.is_set() and not self._closing.is_set():
                log.info("disconnected from the MQTT broker: %s", reason_code)
            self._lost()
        except Exception:
            log.exception("handling the disconnect failed")

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            properties = message.properties
            inbound = Inbound(
                topic=message.topic,
                payload=bytes(message.payload),
                retain=bool(message.retain),
                response_topic=getattr(properties, "ResponseTopic", None),
                correlation=getattr(properties, "CorrelationData", None),
                expiry_s=getattr(properties, "MessageExpiryInterval", None),
            )
            with self._lock:
                callbacks = [
                    callback
                    for topic_filter, subscribed in self._subscriptions.items()
                    if paho.topic_matches_sub(topic_filter, inbound.topic)
                    for callback in subscribed
                ]
        except Exception:
            log.exception("could not read an inbound message")
            return
        for callback in callbacks:
            try:
                callback(inbound)
            except Exception:
                log.exception("the callback for a message on %s failed", inbound.topic)


class Delivery:
    """A QoS 1 message on its way to the broker (see :meth:`MqttConnection.publish_tracked`)."""

    _POLL_S = 0.1
    """How often :meth:`wait` looks whether the connection it went out on is still up."""

    def __init__(self, info: paho.MQTTMessageInfo, connected: threading.Event) -> None:
        self._info = info
        self._connected = connected

    def wait(self, timeout_s: float) -> bool:
        """Wait until the broker has acknowledged the message; ``False`` if not.

        ``False`` comes after ``timeout_s``, or as soon as the connection is lost; the
        message must then be sent again.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            done = _published(self._info)
            if done:
                return True
            left = deadline - time.monotonic()
            if done is None or left <= 0 or not self._connected.is_set():
                return False
            with contextlib.suppress(RuntimeError, ValueError):
                self._info.wait_for_publish(min(self._POLL_S, left))
