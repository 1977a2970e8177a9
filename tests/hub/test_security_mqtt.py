"""Attacks over MQTT that the hub resists, each replayed against a real Mosquitto.

The office's broker runs with the ACL the hub generates (tests/conftest.py), the hub
on it as in production. An attacker is a plain paho client logged in with a device's
own account, sending what no device of ours would: deeply nested payloads, requests
whose MQTT v5 response topic points where the account may not write, floods of block
requests. A spy with the hub's account hears everything of the site, to prove what
the hub did not publish. Every wait has a timeout; nothing sleeps.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
import pytest
from office_helpers import OfficeBroker, RunningHub
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from common.jsonbounds import too_deep
from common.numbering import OFFLINE_SEQ_TOP as TOP
from hub.broker import new_account
from sync_agent import protocol as p
from sync_agent.connection import _Acks
from sync_agent.link import DeviceLink
from sync_agent.presence import LINK_PART

WAIT_S = 10.0
NOT_AUTHORIZED = 0x87
SUCCESS = (0x00, 0x10)  # accepted (0x10: accepted, nobody subscribes)


@dataclass(frozen=True)
class Heard:
    """One message as a client received it."""

    topic: str
    payload: bytes
    correlation: bytes | None


class Client:
    """A paho MQTT v5 client with an account of the office, for what no device would send."""

    def __init__(self, broker: OfficeBroker, username: str) -> None:
        self.heard: queue.Queue[Heard] = queue.Queue()
        self._acks: dict[int, Any] = {}
        self._acked = threading.Condition()
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"test-{username}-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set(username, broker.passwords[username])
        client.on_message = lambda _c, _u, m: self.heard.put(
            Heard(m.topic, bytes(m.payload), getattr(m.properties, "CorrelationData", None))
        )
        client.on_publish = lambda _c, _u, mid, rc, _p: self._ack(mid, rc)
        client.on_subscribe = lambda _c, _u, mid, rcs, _p: self._ack(mid, rcs)
        connected = threading.Event()
        client.on_connect = lambda *_: connected.set()
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        assert connected.wait(WAIT_S), f"{username} did not connect"
        self.client = client

    def _ack(self, mid: int, result: Any) -> None:
        with self._acked:
            self._acks[mid] = result
            self._acked.notify_all()

    def _wait_ack(self, mid: int) -> Any:
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self._acks, WAIT_S), f"no ack for {mid}"
            return self._acks.pop(mid)

    def subscribe(self, topic_filter: str) -> None:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        assert mid is not None
        assert [rc.value for rc in self._wait_ack(mid)] == [1]

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> int:
        """Publish at QoS 1; return the reason code of the broker's PUBACK."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if response_topic is not None:
            props.ResponseTopic = response_topic
        if correlation is not None:
            props.CorrelationData = correlation
        info = self.client.publish(topic, payload, qos=1, properties=props)
        assert info.rc == paho.MQTT_ERR_SUCCESS
        return int(self._wait_ack(info.mid).value)

    def receive(self) -> Heard:
        return self.heard.get(timeout=WAIT_S)

    def until(self, wanted: Callable[[Heard], bool]) -> list[Heard]:
        """Every message up to the first ``wanted`` one (which must come), that one included."""
        seen = []
        while True:
            try:
                message = self.receive()
            except queue.Empty:
                raise AssertionError(f"not heard within {WAIT_S} s; heard {seen}") from None
            seen.append(message)
            if wanted(message):
                return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def connect(broker: OfficeBroker) -> Any:
    """Log clients in by account name; they are closed afterwards."""
    clients: list[Client] = []

    def login(username: str) -> Client:
        client = Client(broker, username)
        clients.append(client)
        return client

    yield login
    for client in clients:
        client.close()


@pytest.fixture
def spy(connect: Callable[[str], Client], broker: OfficeBroker) -> Client:
    """The hub's account, hearing everything of the site."""
    client = connect("hub")
    client.subscribe(p.Topics(broker.site).all())
    return client


def issue(msg_id: str, service: str = "taxes") -> bytes:
    return p.IssueRequest(msg_id=msg_id, service=service).encode()


def is_reply(message: Heard) -> bool:
    """Whether a message is something the hub answered (not a device's request)."""
    data = json.loads(message.payload)
    return isinstance(data, dict) and bool({"error", "number", "counter", "duplicate"} & set(data))


# -- payload bounds ---------------------------------------------------------------------

DEEP = b"[" * 5000 + b"]" * 5000
DEEP_WITH_ID = b'{"v": 1, "msg_id": "deep-1", "service": ' + DEEP + b"}"


def test_the_parser_refuses_deep_nesting_before_parsing() -> None:
    for payload in (DEEP, DEEP_WITH_ID, b'{"a":' * 17 + b"1" + b"}" * 17):
        with pytest.raises(p.ProtocolError) as refused:
            p.decode(p.IssueRequest, payload)
        assert refused.value.code == "invalid"
        assert "nests" in refused.value.message
    # The error path reads the same payload without failing.
    assert p.msg_id_of(DEEP) is None
    assert p.msg_id_of(DEEP_WITH_ID) is None
    # Brackets inside strings do not count; the deepest real payload passes.
    assert not too_deep(b'{"note": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 1)
    health = p.DeviceHealth(parts={"printer": p.PartHealth(state="ok")}, at=datetime.now(UTC))
    assert p.decode(p.DeviceHealth, health.encode()) == health


@pytest.mark.parametrize(("payload", "msg_id"), [(DEEP, None), (DEEP_WITH_ID, None)])
def test_a_deeply_nested_request_is_answered_invalid(
    hub: RunningHub,
    broker: OfficeBroker,
    connect: Callable[[str], Client],
    payload: bytes,
    msg_id: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topics = p.Topics(broker.site)
    kiosk = connect("kiosk-k1")
    kiosk.subscribe(topics.device_reply("k1"))
    reply_to = topics.device_reply("k1")
    with caplog.at_level(logging.WARNING, logger="hub.bridge"):
        assert (
            kiosk.publish(
                topics.kiosk_issue("k1"), payload, response_topic=reply_to, correlation=b"deep"
            )
            in SUCCESS
        )
        answer = kiosk.receive()
    assert answer.correlation == b"deep"
    reply = p.decode(p.ErrorReply, answer.payload)
    assert (reply.msg_id, reply.error.code) == (msg_id, "invalid")
    assert not [r for r in caplog.records if r.exc_info], "the hub logged a traceback"
    # The hub goes on serving.
    kiosk.publish(
        topics.kiosk_issue("k1"), issue("after"), response_topic=reply_to, correlation=b"ok"
    )
    assert json.loads(kiosk.receive().payload)["number"] == "A001"


# -- response topics ----------------------------------------------------------------------


def hostile_reply_topics(topics: p.Topics) -> list[str]:
    """Where a kiosk may not write, each a place the hub must not publish a reply to."""
    return [
        topics.calls(),
        topics.counter_state("3"),
        topics.queue("taxes"),
        topics.device_status("hub"),
        topics.device_reply("k2"),
        topics.kiosk_issue("k1"),  # the hub would answer itself
        topics.eservice_update(),
        "elsewhere/entirely",
    ]


def test_the_hub_answers_a_kiosk_only_on_its_own_reply_topic(
    hub: RunningHub,
    broker: OfficeBroker,
    connect: Callable[[str], Client],
    spy: Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topics = p.Topics(broker.site)
    kiosk = connect("kiosk-k1")
    kiosk.subscribe(topics.device_reply("k1"))
    hostile = hostile_reply_topics(topics)
    with caplog.at_level(logging.WARNING, logger="hub.bridge"):
        for n, topic in enumerate(hostile):
            assert (
                kiosk.publish(
                    topics.kiosk_issue("k1"),
                    issue(f"hostile-{n}"),
                    response_topic=topic,
                    correlation=f"hostile-{n}".encode(),
                )
                in SUCCESS
            )
        # The legitimate request, after them: the hub handles one message at a time.
        kiosk.publish(
            topics.kiosk_issue("k1"),
            issue("legit"),
            response_topic=topics.device_reply("k1"),
            correlation=b"legit",
        )
        answer = kiosk.receive()
        seen = spy.until(lambda m: m.correlation == b"legit" and is_reply(m))
    assert answer.correlation == b"legit"
    assert json.loads(answer.payload)["msg_id"] == "legit"
    # Nothing the hub published before that reply answers a hostile request: the
    # hostile correlation data travel only on the requests themselves.
    answered = [m for m in seen if m.correlation and m.correlation.startswith(b"hostile")]
    assert answered, "the spy did not hear the requests"
    assert not [m for m in answered if is_reply(m)]
    assert kiosk.heard.empty()
    # The requests themselves were served (they came on the kiosk's own topic).
    assert hub.queue.store.count_tickets() == len(hostile) + 1
    # Refused and logged once, not once per message.
    refusals = [r.getMessage() for r in caplog.records if "refused to answer" in r.getMessage()]
    assert len(refusals) == 1, refusals
    assert topics.calls() in refusals[0]
    assert topics.device_reply("k1") in refusals[0]


@pytest.mark.parametrize(
    ("username", "own", "other"),
    [("panel-p1", "p1", "p2"), ("imesto", "imesto", "k1")],
)
def test_a_panel_or_back_office_cannot_redirect_replies(
    hub: RunningHub,
    broker: OfficeBroker,
    connect: Callable[[str], Client],
    spy: Client,
    username: str,
    own: str,
    other: str,
) -> None:
    topics = p.Topics(broker.site)
    if username == "imesto":
        topic = topics.eservice_update()

        def request(msg_id: str) -> bytes:
            return p.EServiceUpdate(
                msg_id=msg_id,
                system="imesto",
                reference="BB-1",
                status="received",
                at=datetime.now(UTC),
            ).encode()
    else:
        topic = topics.counter_cmd("1")

        def request(msg_id: str) -> bytes:
            return p.CounterCommand(msg_id=msg_id, action="resume").encode()

    sender = connect(username)
    sender.subscribe(topics.device_reply(own))
    for n, target in enumerate([topics.device_reply(other), topics.calls()]):
        sender.publish(
            topic, request(f"h{n}"), response_topic=target, correlation=f"hostile-{n}".encode()
        )
    sender.publish(topic, request("ok"), response_topic=topics.device_reply(own), correlation=b"ok")
    assert sender.receive().correlation == b"ok"
    seen = spy.until(lambda m: m.correlation == b"ok" and is_reply(m))
    assert not [m for m in seen if (m.correlation or b"").startswith(b"hostile") and is_reply(m)]


def test_a_device_paired_while_the_hub_runs_is_answered(
    hub: RunningHub, broker: OfficeBroker
) -> None:
    topics = p.Topics(broker.site)
    command = topics.counter_cmd("9")
    assert hub.bridge.reply_topics(command) == frozenset()
    panel, _ = new_account("panel-p9", "counter", device_id="p9", counters=["9"])
    hub.queue.store.save_account(panel, at=datetime.now(UTC))
    # Read again when a reply topic is not among the known ones.
    assert hub.bridge.reply_topics(command, reload=True) == {topics.device_reply("p9")}


# -- number blocks -------------------------------------------------------------------------


def test_one_kiosk_cannot_reserve_every_number_of_the_day(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    kiosk = device("kiosk-k1")
    topics = kiosk.topics
    granted, refused = [], []
    for n in range(20):
        ask = p.BlockRequest(msg_id=f"flood-{n}", services=["taxes"], size=100)
        reply = kiosk.request(topics.kiosk_blocks("k1"), ask, timeout_s=WAIT_S)
        assert isinstance(reply, p.BlockReply), reply
        granted += reply.blocks
        refused += [why.code for why in reply.refused.values()]
    assert len(granted) == 2
    assert refused == ["too_many_blocks"] * 18
    # Citizens still get numbers, and another kiosk its blocks.
    assert hub.queue.issue("taxes").ticket.number == "A001"
    other = device("kiosk-k2")
    ask = p.BlockRequest(msg_id="k2-1", services=["taxes"], size=100)
    reply = other.request(other.topics.kiosk_blocks("k2"), ask, timeout_s=WAIT_S)
    assert isinstance(reply, p.BlockReply)
    assert [(b.first_seq, b.last_seq) for b in reply.blocks] == [(TOP - 299, TOP - 200)]


# -- a device whose id does not match its account -------------------------------------------


def test_a_device_on_the_wrong_account_names_the_topic_and_the_account(
    hub: RunningHub,
    broker: OfficeBroker,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # [device] id "k9", [mqtt] username "kiosk-k1" (whose device id is k1).
    link = DeviceLink(
        mqtt=broker.mqtt("kiosk-k1"),
        site=broker.site,
        device_id="k9",
        role="kiosk",
        outbox_path=None,
        reply_timeout_s=2.0,
    )
    issue_topic = link.topics.kiosk_issue("k9")
    with caplog.at_level(logging.ERROR, logger="sync_agent.connection"):
        link.start()
        try:
            assert link.connected.wait(WAIT_S)
            request = p.IssueRequest(msg_id="wrong-account", service="taxes")
            assert link.request(issue_topic, request, timeout_s=2.0) is None
            problems = [r.getMessage() for r in caplog.records]
            problem = link.problem
        finally:
            link.stop()
    assert problem is not None
    assert "'kiosk-k1'" in problem
    assert "'k9'" in problem
    assert "Not authorized" in problem
    logged = "\n".join(problems)
    for topic in (link.topics.device_status("k9"), issue_topic):
        assert topic in logged
    assert "'kiosk-k1'" in logged
    assert "0x87" in logged
    # Once per topic, however often it is refused.
    assert len(problems) == len(set(problems))


def test_a_refusal_shows_in_the_devices_health(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    """A panel set up for a counter its account does not serve: the hub sees why."""
    heard: queue.Queue[Any] = queue.Queue()
    hub.bridge.on_device(heard.put)
    panel = device("panel-p1")  # counters 1 and 2
    panel.publish_health({"lcd": p.PartHealth(state="ok")})
    refused = panel.topics.counter_cmd("3")
    panel.send(refused, p.CounterCommand(msg_id=uuid.uuid4().hex, action="resume"))
    while True:
        try:
            view = heard.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no health with the refusal; the link: {panel.problem}") from None
        if view.device_id == "p1" and view.health and LINK_PART in view.health.parts:
            break
    part = view.health.parts[LINK_PART]
    assert part.state == "error"
    assert part.detail is not None
    assert refused in part.detail
    assert "'panel-p1'" in part.detail
    assert view.health.parts["lcd"].state == "ok"


def test_refusals_are_named_even_when_the_answer_comes_first() -> None:
    """The broker may answer before the publishing thread noted the packet's topic."""
    acks = _Acks()
    denied = ReasonCode(PacketTypes.PUBACK, identifier=NOT_AUTHORIZED)
    granted = ReasonCode(PacketTypes.SUBACK, identifier=1)
    refused = ReasonCode(PacketTypes.SUBACK, identifier=0x80)
    assert acks.sent(1, "a/issue") == []
    assert acks.acked(1, [denied]) == [("a/issue", denied)]
    assert acks.acked(2, [denied]) == []  # not named yet...
    assert acks.sent(2, "b/health") == [("b/health", denied)]  # ... now it is
    assert acks.sent(3, "c/reply", "c/queue") == []
    assert acks.acked(3, [granted, refused]) == [("c/queue", refused)]
    assert acks.acked(4, [granted]) == []
    assert acks.sent(4, "d/ok") == []  # an early success is not kept
    assert acks.acked(4, [granted]) == []
