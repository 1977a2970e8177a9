"""Thousands of malformed payloads on every inbound topic: the hub answers and survives."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from typing import Any

import paho.mqtt.client as paho
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from office_helpers import OfficeBroker, RunningHub
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sync_agent import protocol as p

WAIT_S = 60.0
REQUEST_KINDS = ("kiosk/k1/issue", "counter/1/cmd", "eservice/update")
STATE_KINDS = ("device/k1/status", "device/k1/health")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
near_misses = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 2, "1", None, 1.0]),
        "msg_id": st.text(max_size=80) | st.integers(),
    },
    optional={
        "service": st.text(max_size=20) | st.sampled_from(["taxes", "info", "x/y", "#"]),
        "action": st.text(max_size=12) | st.sampled_from(list(p.COUNTER_ACTIONS)),
        "state": st.sampled_from(["online", "offline", "maybe"]),
        "parts": json_values,
        "priority": json_values,
        "lang": st.sampled_from(["sk", "de", ""]),
        "at": st.text(max_size=30),
        "extra": json_values,
    },
)
payloads = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_misses.map(lambda v: json.dumps(v).encode()),
    st.just(b"{" * 5000),
    st.just(json.dumps({"v": 1, "msg_id": "big", "service": "x" * 40_000}).encode()),
)


class Fuzzer:
    """Publishes raw payloads with the hub's all-access account and counts the answers."""

    def __init__(self, broker: OfficeBroker) -> None:
        self.topics = p.Topics(broker.site)
        # The hub answers only on the reply topic of an account that may send the request.
        self.reply_topics = {
            "kiosk/k1/issue": self.topics.device_reply("k1"),
            "counter/1/cmd": self.topics.device_reply("p1"),
            "eservice/update": self.topics.device_reply("imesto"),
        }
        self.answers: queue.Queue[tuple[bytes, bytes]] = queue.Queue()
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"fuzzer-{uuid.uuid4().hex[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set("hub", broker.passwords["hub"])
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.answers.put(
            (m.properties.CorrelationData, m.payload)  # type: ignore[union-attr]
        )
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe([(topic, 1) for topic in self.reply_topics.values()])
        assert subscribed.wait(WAIT_S)
        self.requests = 0

    def send(self, kind: str, payload: bytes) -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if kind in REQUEST_KINDS:
            props.ResponseTopic = self.reply_topics[kind]
            props.CorrelationData = str(self.requests).encode()
            self.requests += 1
        self.client.publish(f"{self.topics.base}/{kind}", payload, qos=1, properties=props)

    def collect(self) -> dict[bytes, list[dict[str, Any]]]:
        got: dict[bytes, list[dict[str, Any]]] = {}
        while sum(len(v) for v in got.values()) < self.requests:
            correlation, payload = self.answers.get(timeout=WAIT_S)
            got.setdefault(correlation, []).append(json.loads(payload))
        return got

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_the_hub_survives_malformed_payloads_on_every_topic(
    hub: RunningHub, broker: OfficeBroker
) -> None:
    fuzzer = Fuzzer(broker)

    @settings(
        max_examples=2500,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(kind=st.sampled_from(REQUEST_KINDS + STATE_KINDS), payload=payloads)
    def publish(kind: str, payload: bytes) -> None:
        fuzzer.send(kind, payload)

    publish()
    answers = fuzzer.collect()
    try:
        # Every request got exactly one answer, whatever it was.
        assert sorted(answers) == sorted(str(i).encode() for i in range(fuzzer.requests))
        assert all(len(a) == 1 for a in answers.values())
        codes = {a[0]["error"]["code"] for a in answers.values() if "error" in a[0]}
        assert {"malformed", "invalid"} <= codes
        assert "internal" not in codes
        # And the hub still serves an ordinary citizen.
        fuzzer.send("kiosk/k1/issue", p.IssueRequest(msg_id="after", service="info").encode())
        _, reply = fuzzer.answers.get(timeout=WAIT_S)
        assert json.loads(reply)["number"].startswith("D")
    finally:
        fuzzer.close()
