"""The device side of the MQTT link (connection and device link) against a real Mosquitto.

A tiny responder (a plain paho client) stands in for the hub's bridge: it answers
requests on their MQTT v5 response topic with their correlation data. Every wait
is on a queue or an event with a timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from office_helpers import require_mosquitto
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.settings import MqttSettings
from hub.broker import Mosquitto, free_port
from poradovnik import __version__
from sync_agent.backoff import Backoff
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.link import DeviceLink, decode_reply
from sync_agent.outbox import Outbox
from sync_agent.protocol import (
    CommandReply,
    CounterCommand,
    DeviceHealth,
    DeviceStatus,
    ErrorReply,
    IssueRequest,
    PartHealth,
    ProtocolError,
    TicketReply,
    Topics,
    decode,
)

SITE = "test"
TOPICS = Topics(SITE)
WAIT_S = 15.0
"""Upper bound of every wait; reached only when something is broken."""


# -- broker -------------------------------------------------------------------------


def _broker(tmp_path: Path, *, persistent: bool = False) -> Mosquitto:
    port = free_port()
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true"]
    if persistent:
        store = tmp_path / f"mosquitto-{port}"
        store.mkdir()
        lines += ["persistence true", f"persistence_location {store}/"]
        if os.geteuid() == 0:  # else Mosquitto drops to its own user and cannot write here
            lines.append("user root")
    else:
        lines.append("persistence false")
    config = tmp_path / f"mosquitto-{port}.conf"
    config.write_text("\n".join(lines) + "\n")
    require_mosquitto()
    broker = Mosquitto(config, port)
    broker.start()
    return broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = _broker(tmp_path)
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that keeps retained messages across a restart."""
    mosquitto = _broker(tmp_path, persistent=True)
    yield mosquitto
    mosquitto.stop()


# -- plain paho helpers -----------------------------------------------------------------


def _paho_client() -> paho.Client:
    return paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5
    )


class Observer:
    """A plain paho client that collects every message on one topic filter."""

    def __init__(self, port: int, topic_filter: str) -> None:
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        subscribed = threading.Event()
        self.client = _paho_client()
        self.client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(WAIT_S), "observer did not subscribe"

    def wait_for(self, predicate: Callable[[paho.MQTTMessage], bool]) -> paho.MQTTMessage:
        deadline = time.monotonic() + WAIT_S
        while True:
            msg = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            if predicate(msg):
                return msg

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def observe(broker: Mosquitto) -> Iterator[Callable[[str], Observer]]:
    made: list[Observer] = []

    def make(topic_filter: str) -> Observer:
        observer = Observer(broker.port, topic_filter)
        made.append(observer)
        return observer

    yield make
    for observer in made:
        observer.close()


def status_of(msg: paho.MQTTMessage) -> DeviceStatus:
    return decode(DeviceStatus, bytes(msg.payload))


class Responder:
    """Stands in for the hub's bridge: answers requests on the response topic.

    ``drop_once``: msg_ids whose first delivery goes unanswered (as if missed);
    ``ignore``: msg_ids never answered; ``garbage``: msg_id → payloads sent as
    replies before the real one.
    """

    def __init__(self, port: int) -> None:
        self.received: queue.Queue[tuple[str, str, bytes, Any]] = queue.Queue()
        self.log: list[tuple[str, str, bytes]] = []
        self.drop_once: set[str] = set()
        self.ignore: set[str] = set()
        self.garbage: dict[str, list[bytes]] = {}
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = _paho_client()
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(WAIT_S), "responder did not subscribe"

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe([(f"{TOPICS.base}/kiosk/+/issue", 1), (f"{TOPICS.base}/counter/+/cmd", 1)])

    def _on_message(self, client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        msg_id = json.loads(msg.payload)["msg_id"]
        props = msg.properties
        with self._lock:
            self.log.append((msg.topic, msg_id, bytes(msg.payload)))
            dropped = msg_id in self.drop_once or msg_id in self.ignore
            self.drop_once.discard(msg_id)
        self.received.put((msg.topic, msg_id, bytes(msg.payload), props))
        if dropped:
            return
        response_topic = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        if response_topic is None:
            return
        reply_props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        reply_props.CorrelationData = correlation
        for payload in self.garbage.get(msg_id, []):
            client.publish(response_topic, payload, qos=1, properties=reply_props)
        kind, ident = TOPICS.parse(msg.topic)
        reply: TicketReply | CommandReply
        if kind == "kiosk_issue":
            request = decode(IssueRequest, bytes(msg.payload))
            reply = TicketReply(
                msg_id=msg_id,
                ticket_id=f"t-{msg_id}",
                number="A 1",
                service=request.service,
                people_ahead=0,
                estimated_wait_s=None,
                issued_at=datetime.now(UTC),
            )
        else:
            reply = CommandReply(msg_id=msg_id, counter=ident or "", state="open", ticket=None)
        client.publish(response_topic, reply.encode(), qos=1, properties=reply_props)

    def first_seen(self) -> list[str]:
        """msg_ids in the order they first arrived: what a de-duplicating hub applied."""
        seen: list[str] = []
        with self._lock:
            for _topic, msg_id, _payload in self.log:
                if msg_id not in seen:
                    seen.append(msg_id)
        return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def responder(broker: Mosquitto) -> Iterator[Responder]:
    hub = Responder(broker.port)
    yield hub
    hub.close()


# -- the device link ------------------------------------------------------------------


@pytest.fixture
def make_link(broker: Mosquitto) -> Iterator[Callable[..., DeviceLink]]:
    links: list[DeviceLink] = []

    def make(**options: Any) -> DeviceLink:
        settings: dict[str, Any] = {
            "mqtt": MqttSettings(host="127.0.0.1", port=broker.port),
            "site": SITE,
            "device_id": "dev1",
            "role": "counter",
            "outbox_path": None,
            "reply_timeout_s": 2.0,
            "backoff_base_s": 0.02,
            "backoff_cap_s": 0.2,
            "rng": random.Random(1),
            "stop_timeout_s": 5.0,
        }
        settings.update(options)
        link = DeviceLink(**settings)
        links.append(link)
        return link

    yield make
    for link in links:
        link.stop()


def watch_connection(link: DeviceLink) -> queue.Queue[bool]:
    changes: queue.Queue[bool] = queue.Queue()
    link.on_connection_change(changes.put)
    return changes


def wait_change(changes: queue.Queue[bool], expected: bool) -> None:
    deadline = time.monotonic() + WAIT_S
    while changes.get(timeout=max(0.0, deadline - time.monotonic())) is not expected:
        pass


def started(link: DeviceLink) -> DeviceLink:
    link.start()
    assert link.connected.wait(WAIT_S), "the link did not connect"
    return link


def next_cmd(i: int) -> CounterCommand:
    return CounterCommand(msg_id=f"cmd-{i:02d}", action="next")


# -- status, will, health -------------------------------------------------------------


def test_online_status_is_retained_after_connect(
    make_link: Callable[..., DeviceLink], observe: Callable[[str], Observer]
) -> None:
    link = started(make_link(role="kiosk", device_id="kiosk1"))
    # Subscribing after the fact: the retained status is there (or arrives live first).
    observer = observe(TOPICS.device_status("kiosk1"))
    msg = observer.wait_for(lambda m: status_of(m).state == "online")
    status = status_of(msg)
    assert status.role == "kiosk"
    assert status.version == __version__
    assert status.at is not None
    assert link.connected.is_set()
    # A later subscriber gets it as a retained message.
    late = observe(TOPICS.device_status("kiosk1"))
    assert late.wait_for(lambda m: True).retain


def test_clean_stop_publishes_offline_retained(
    make_link: Callable[..., DeviceLink], observe: Callable[[str], Observer]
) -> None:
    link = started(make_link(role="counter", device_id="panel1"))
    changes = watch_connection(link)
    observer = observe(TOPICS.device_status("panel1"))
    observer.wait_for(lambda m: status_of(m).state == "online")
    link.stop()
    offline = status_of(observer.wait_for(lambda m: status_of(m).state == "offline"))
    assert offline.role == "counter"
    assert offline.at is not None
    assert not link.connected.is_set()
    wait_change(changes, expected=False)
    late = observe(TOPICS.device_status("panel1"))
    msg = late.wait_for(lambda m: True)
    assert msg.retain
    assert status_of(msg).state == "offline"
    link.stop()  # twice is harmless


_CRASHING_DEVICE = """
import sys
from common.settings import MqttSettings
from sync_agent.link import DeviceLink

link = DeviceLink(
    mqtt=MqttSettings(host="127.0.0.1", port=int(sys.argv[1])),
    site="test", device_id="crashy", role="display", outbox_path=None,
)
link.start()
if not link.connected.wait(15):
    sys.exit(3)
print("connected", flush=True)
sys.stdin.read()  # until killed
"""


def test_last_will_says_offline_when_the_device_dies(
    broker: Mosquitto, observe: Callable[[str], Observer]
) -> None:
    observer = observe(TOPICS.device_status("crashy"))
    with subprocess.Popen(
        [sys.executable, "-c", _CRASHING_DEVICE, str(broker.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as device:
        try:
            lines: queue.Queue[bytes] = queue.Queue()
            stdout = device.stdout
            assert stdout is not None
            threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
            assert lines.get(timeout=WAIT_S) == b"connected\n"
            online = status_of(observer.wait_for(lambda m: status_of(m).state == "online"))
            assert online.role == "display"
            device.kill()  # no clean disconnect: the broker publishes the will
            device.wait(timeout=WAIT_S)
            will = status_of(observer.wait_for(lambda m: status_of(m).state == "offline"))
            assert will.role == "display"
            late = observe(TOPICS.device_status("crashy"))
            msg = late.wait_for(lambda m: True)
            assert msg.retain
            assert status_of(msg).state == "offline"
        finally:
            device.kill()


def test_health_is_retained_and_republished_after_reconnect(
    broker: Mosquitto, make_link: Callable[..., DeviceLink], observe: Callable[[str], Observer]
) -> None:
    link = started(make_link(role="kiosk", device_id="kiosk1"))
    changes = watch_connection(link)
    observer = observe(TOPICS.device_health("kiosk1"))
    link.publish_health({"printer": PartHealth(state="paper_near_end")})
    health = decode(DeviceHealth, bytes(observer.wait_for(lambda m: True).payload))
    assert health.parts["printer"].state == "paper_near_end"

    observer.close()
    broker.restart()  # no persistence: the retained health is gone with the broker
    wait_change(changes, expected=False)
    wait_change(changes, expected=True)
    late = observe(TOPICS.device_health("kiosk1"))
    again = decode(DeviceHealth, bytes(late.wait_for(lambda m: True).payload))
    assert again == health


# -- requests -------------------------------------------------------------------------


def test_request_gets_its_reply(make_link: Callable[..., DeviceLink], responder: Responder) -> None:
    link = started(make_link(role="kiosk", device_id="kiosk1"))
    request = IssueRequest(msg_id="issue-1", service="A")
    reply = link.request(TOPICS.kiosk_issue("kiosk1"), request, timeout_s=WAIT_S)
    assert isinstance(reply, TicketReply)
    assert reply.msg_id == "issue-1"
    assert reply.service == "A"
    topic, msg_id, payload, props = responder.received.get(timeout=WAIT_S)
    assert (topic, msg_id, payload) == (TOPICS.kiosk_issue("kiosk1"), "issue-1", request.encode())
    assert props.ResponseTopic == TOPICS.device_reply("kiosk1")
    assert props.CorrelationData == b"issue-1"
    assert 1 <= props.MessageExpiryInterval <= WAIT_S


def test_request_times_out_with_none(
    make_link: Callable[..., DeviceLink], responder: Responder
) -> None:
    link = started(make_link(role="kiosk", device_id="kiosk1"))
    responder.ignore.add("issue-lost")
    request = IssueRequest(msg_id="issue-lost", service="A")
    assert link.request(TOPICS.kiosk_issue("kiosk1"), request, timeout_s=0.3) is None
    # The responder did get it: the link waited and gave up, as the kiosk will.
    assert responder.received.get(timeout=WAIT_S)[1] == "issue-lost"
    # The link still works afterwards.
    ok = link.request(TOPICS.kiosk_issue("kiosk1"), IssueRequest(msg_id="i2", service="A"))
    assert isinstance(ok, TicketReply)


def test_request_when_not_connected_is_none_at_once(
    broker: Mosquitto, make_link: Callable[..., DeviceLink]
) -> None:
    broker.stop()
    link = make_link(role="kiosk", device_id="kiosk1")
    link.start()
    request = IssueRequest(msg_id="issue-1", service="A")
    assert link.request(TOPICS.kiosk_issue("kiosk1"), request, timeout_s=WAIT_S) is None


def test_malformed_replies_are_logged_and_dropped(
    make_link: Callable[..., DeviceLink], responder: Responder, caplog: pytest.LogCaptureFixture
) -> None:
    responder.garbage["issue-1"] = [
        b"not json at all",
        b'{"v": 1, "number": "A 1"}',
        b'{"v": 1, "msg_id": "issue-1"}',
    ]
    link = started(make_link(role="kiosk", device_id="kiosk1"))
    with caplog.at_level(logging.WARNING, logger="sync_agent.link"):
        reply = link.request(
            TOPICS.kiosk_issue("kiosk1"), IssueRequest(msg_id="issue-1", service="A"), WAIT_S
        )
    assert isinstance(reply, TicketReply)  # the good reply after the bad ones
    dropped = [r.getMessage() for r in caplog.records if "dropped a reply" in r.getMessage()]
    assert len(dropped) == 3
    assert "malformed" in dropped[0]
    assert "invalid" in dropped[1]
    assert "unknown_reply" in dropped[2]
    assert link.connected.is_set()


def test_decode_reply_picks_the_model_by_its_fields() -> None:
    now = datetime.now(UTC).isoformat()
    error = {"v": 1, "msg_id": "m", "error": {"code": "closed", "message": "closed"}}
    assert isinstance(decode_reply(json.dumps(error).encode()), ErrorReply)
    ticket = {
        "v": 1,
        "msg_id": "m",
        "ticket_id": "t",
        "number": "A 1",
        "service": "A",
        "people_ahead": 2,
        "estimated_wait_s": 60,
        "issued_at": now,
    }
    assert isinstance(decode_reply(json.dumps(ticket).encode()), TicketReply)
    command = {"v": 1, "msg_id": "m", "counter": "c1", "state": "paused", "ticket": None}
    assert isinstance(decode_reply(json.dumps(command).encode()), CommandReply)
    for bad in (b"[]", b"\xff", json.dumps({"v": 2, "number": "x"}).encode(), b"{}"):
        with pytest.raises(ProtocolError):
            decode_reply(bad)


# -- durable sends --------------------------------------------------------------------


def collect_replies(link: DeviceLink) -> queue.Queue[tuple[Any, Any]]:
    replies: queue.Queue[tuple[Any, Any]] = queue.Queue()
    link.on_reply(lambda command, reply: replies.put((command, reply)))
    return replies


def test_send_without_outbox_is_refused(make_link: Callable[..., DeviceLink]) -> None:
    link = make_link()
    with pytest.raises(RuntimeError, match="no outbox"):
        link.send(TOPICS.counter_cmd("c1"), next_cmd(1))
    assert link.queued == 0


def test_outbox_is_delivered_in_order_across_a_broker_outage(
    tmp_path: Path,
    broker: Mosquitto,
    make_link: Callable[..., DeviceLink],
    responder: Responder,
) -> None:
    link = make_link(outbox_path=tmp_path / "outbox.sqlite3", reply_timeout_s=1.0)
    changes = watch_connection(link)
    replies = collect_replies(link)
    started(link)
    topic = TOPICS.counter_cmd("c1")

    ids = [link.send(topic, next_cmd(i)) for i in range(10)]  # while up: some go out
    broker.stop()  # the broker goes away in the middle of it
    wait_change(changes, expected=False)
    ids += [link.send(topic, next_cmd(i)) for i in range(10, 20)]  # while down: all queue
    assert link.queued > 10
    broker.start()

    got = [replies.get(timeout=WAIT_S * 2) for _ in range(20)]
    assert [command.msg_id for command, _ in got] == ids
    assert all(isinstance(reply, CommandReply) for _, reply in got)
    assert [reply.msg_id for _, reply in got] == ids
    assert got[0][0] == next_cmd(0)
    assert link.queued == 0
    assert replies.empty()  # each answered command reported exactly once
    # The hub (de-duplicating by msg_id) applied every command once, in order.
    assert responder.first_seen() == ids


def test_outbox_survives_a_link_restart(
    tmp_path: Path, broker: Mosquitto, make_link: Callable[..., DeviceLink]
) -> None:
    path = tmp_path / "outbox.sqlite3"
    broker.stop()
    first = make_link(outbox_path=path)
    first.start()
    ids = [first.send(TOPICS.counter_cmd("c1"), next_cmd(i)) for i in range(3)]
    assert first.queued == 3
    first.stop()
    with Outbox(path) as box:
        assert [e.msg_id for e in box.entries()] == ids

    broker.start()
    hub = Responder(broker.port)
    try:
        second = make_link(outbox_path=path)
        replies = collect_replies(second)
        second.start()
        got = [replies.get(timeout=WAIT_S) for _ in range(3)]
        assert [command.msg_id for command, _ in got] == ids
        assert hub.first_seen() == ids
        assert second.queued == 0
    finally:
        hub.close()


def test_missed_command_is_resent_with_the_same_msg_id(
    tmp_path: Path, make_link: Callable[..., DeviceLink], responder: Responder
) -> None:
    responder.drop_once.add("cmd-07")
    link = make_link(outbox_path=tmp_path / "outbox.sqlite3", reply_timeout_s=0.3)
    replies = collect_replies(link)
    started(link)
    link.send(TOPICS.counter_cmd("c1"), next_cmd(7))
    command, reply = replies.get(timeout=WAIT_S)
    assert command.msg_id == reply.msg_id == "cmd-07"
    deliveries = [entry for entry in responder.log if entry[1] == "cmd-07"]
    assert len(deliveries) >= 2  # missed once, then sent again
    assert len({payload for _, _, payload in deliveries}) == 1  # the very same bytes
    assert link.queued == 0
    assert replies.empty()


def test_error_reply_completes_a_command(
    tmp_path: Path, broker: Mosquitto, make_link: Callable[..., DeviceLink]
) -> None:
    # A hub that refuses everything.
    hub = _paho_client()
    subscribed = threading.Event()
    hub.on_subscribe = lambda *_: subscribed.set()

    def refuse(client: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = getattr(msg.properties, "CorrelationData", None)
        error = ErrorReply.model_validate(
            {"msg_id": json.loads(msg.payload)["msg_id"], "error": {"code": "x", "message": "no"}}
        )
        response_topic: str = getattr(msg.properties, "ResponseTopic", "")
        client.publish(response_topic, error.encode(), qos=1, properties=props)

    hub.on_message = refuse
    hub.connect("127.0.0.1", broker.port)
    hub.subscribe(TOPICS.counter_cmd("+"), qos=1)
    hub.loop_start()
    try:
        assert subscribed.wait(WAIT_S)
        link = make_link(outbox_path=tmp_path / "outbox.sqlite3")
        replies = collect_replies(link)
        started(link)
        link.send(TOPICS.counter_cmd("c1"), next_cmd(1))
        _, reply = replies.get(timeout=WAIT_S)
        assert isinstance(reply, ErrorReply)
        assert reply.error.code == "x"
        assert link.queued == 0
    finally:
        hub.disconnect()
        hub.loop_stop()


# -- subscriptions --------------------------------------------------------------------


def test_subscriptions_get_retained_state_again_after_a_broker_restart(
    persistent_broker: Mosquitto, make_link: Callable[..., DeviceLink]
) -> None:
    link = make_link(mqtt=MqttSettings(host="127.0.0.1", port=persistent_broker.port))
    changes = watch_connection(link)
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    link.subscribe(TOPICS.queue("+"), lambda topic, payload: got.put((topic, payload)))
    started(link)

    publisher = _paho_client()
    publisher.connect("127.0.0.1", persistent_broker.port)
    publisher.loop_start()
    try:
        publisher.publish(TOPICS.queue("A"), b"state-1", qos=1, retain=True).wait_for_publish(
            WAIT_S
        )
    finally:
        publisher.disconnect()
        publisher.loop_stop()
    assert got.get(timeout=WAIT_S) == (TOPICS.queue("A"), b"state-1")

    persistent_broker.restart()  # keeps the retained message, forgets subscriptions
    wait_change(changes, expected=False)
    wait_change(changes, expected=True)
    assert got.get(timeout=WAIT_S) == (TOPICS.queue("A"), b"state-1")


def test_a_failing_callback_does_not_stop_the_link(
    make_link: Callable[..., DeviceLink], caplog: pytest.LogCaptureFixture
) -> None:
    link = make_link()
    got: queue.Queue[bytes] = queue.Queue()

    def explode(topic: str, payload: bytes) -> None:
        raise RuntimeError("boom")

    link.subscribe(TOPICS.calls(), explode)
    link.subscribe(TOPICS.calls(), lambda topic, payload: got.put(payload))
    link.on_connection_change(lambda up: explode("", b""))
    started(link)
    with caplog.at_level(logging.ERROR, logger="sync_agent.connection"):
        for n in (b"1", b"2"):
            link.connection.publish(TOPICS.calls(), n)
            assert got.get(timeout=WAIT_S) == n
    assert any("failed" in r.getMessage() for r in caplog.records)
    assert link.connected.is_set()


def test_invalid_topic_filter_is_refused(make_link: Callable[..., DeviceLink]) -> None:
    link = make_link()
    for bad in ("", "a/#/b", "a/b+", "a#"):
        with pytest.raises(ValueError, match="topic filter"):
            link.subscribe(bad, lambda topic, payload: None)


def test_request_from_a_callback_is_refused(make_link: Callable[..., DeviceLink]) -> None:
    link = make_link(role="kiosk", device_id="kiosk1")
    outcome: queue.Queue[BaseException | object] = queue.Queue()

    def ask(topic: str, payload: bytes) -> None:
        try:
            outcome.put(
                link.request(TOPICS.kiosk_issue("kiosk1"), IssueRequest(msg_id="x", service="A"))
            )
        except RuntimeError as exc:
            outcome.put(exc)

    link.subscribe(TOPICS.calls(), ask)
    started(link)
    link.connection.publish(TOPICS.calls(), b"{}")
    assert isinstance(outcome.get(timeout=WAIT_S), RuntimeError)


def test_connection_hands_over_v5_request_properties(broker: Mosquitto) -> None:
    """What the hub's bridge needs from MqttConnection: response topic and correlation."""
    hub = MqttConnection(
        mqtt=MqttSettings(host="127.0.0.1", port=broker.port),
        client_id="test-hub",
        backoff=Backoff(0.02, 0.2, rng=random.Random(2)),
    )
    inbound: queue.Queue[Inbound] = queue.Queue()
    hub.subscribe(TOPICS.counter_cmd("+"), inbound.put)
    hub.start()
    try:
        assert hub.connected.wait(WAIT_S)
        assert hub.publish(
            TOPICS.counter_cmd("c1"), b"cmd", response_topic="where/to", correlation=b"c-1"
        )
        message = inbound.get(timeout=WAIT_S)
        assert message == Inbound(
            topic=TOPICS.counter_cmd("c1"),
            payload=b"cmd",
            retain=False,
            response_topic="where/to",
            correlation=b"c-1",
        )
    finally:
        hub.stop()
    assert not hub.connected.is_set()
    assert not hub.publish("some/topic", b"x")  # dropped, not raised, when not connected


def test_a_failed_write_inside_a_message_callback_does_not_hang_the_link(
    broker: Mosquitto,
) -> None:
    """What a callback publishes is written at once; when that write finds the
    connection broken, the network thread must go on and reconnect. paho's own
    error handling of the write waits for the callback lock the thread holds, and a
    hub once hung that way for good after a broker restart."""
    connection = MqttConnection(
        mqtt=MqttSettings(host="127.0.0.1", port=broker.port),
        client_id="writer",
        backoff=Backoff(0.02, 0.2),
    )
    changes: queue.Queue[bool] = queue.Queue()
    connection.on_connection_change(changes.put)
    answered = threading.Event()
    calls: list[str] = []

    def answer(message: Inbound) -> None:
        calls.append(message.topic)
        if len(calls) == 1:
            # The broker goes away under the callback, as at a restart: the next
            # write fails.
            connection._client.socket().shutdown(socket.SHUT_WR)
        connection.publish("t/answer", b"x")
        answered.set()

    connection.subscribe("t/ask", answer)
    connection.start()
    try:
        assert connection.subscribed.wait(WAIT_S), "the connection did not subscribe"
        assert changes.get(timeout=WAIT_S) is True
        connection.publish("t/ask", b"?")
        assert answered.wait(WAIT_S), "the publish inside the callback did not return"
        wait_change(changes, False)
        wait_change(changes, True)  # the network thread lives on: it reconnects
    finally:
        connection.stop()
