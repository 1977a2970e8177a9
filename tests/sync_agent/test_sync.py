"""The MQTT link end to end: real Mosquitto, the hub's bridge, devices with credentials."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import paho.mqtt.client as paho
import pytest
from office_helpers import ACCOUNTS, OfficeBroker, RunningHub
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hub.bridge import HANDLERS, DeviceView
from hub.model import Action
from hub.service import utc_now
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

WAIT_S = 10.0


def new_id() -> str:
    return uuid.uuid4().hex


class Watcher:
    """Collects what a device hears on a topic filter, to wait for a fact with a timeout."""

    def __init__(self, link: DeviceLink, topic_filter: str) -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        link.subscribe(topic_filter, lambda t, b: self.messages.put((t, json.loads(b))))

    def wait_for(self, wanted: Callable[[str, dict[str, Any]], bool]) -> dict[str, Any]:
        seen = []
        while True:
            try:
                topic, data = self.messages.get(timeout=WAIT_S)
            except queue.Empty:
                raise AssertionError(f"not heard within {WAIT_S}s; heard {seen}") from None
            seen.append((topic, data))
            if wanted(topic, data):
                return data


class RawClient:
    """A plain paho client with an account's credentials, for what no device would send."""

    def __init__(self, broker: OfficeBroker, username: str) -> None:
        self.replies: queue.Queue[tuple[bytes | None, dict[str, Any]]] = queue.Queue()
        extra = next(a[2] for a in ACCOUNTS if a[0] == username)
        reply_to = extra.get("device_id", username)
        self.reply_topic = p.Topics(broker.site).device_reply(str(reply_to))
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"raw-{username}-{new_id()[:6]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.username_pw_set(username, broker.passwords[username])
        subscribed = threading.Event()
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_message = lambda _c, _u, m: self.replies.put(
            (getattr(m.properties, "CorrelationData", None), json.loads(m.payload))
        )
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        client.subscribe(self.reply_topic, qos=1)
        assert subscribed.wait(WAIT_S)
        self.client = client

    def send(self, topic: str, payload: bytes, correlation: bytes = b"c") -> None:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = correlation
        self.client.publish(topic, payload, qos=1, properties=props).wait_for_publish(WAIT_S)

    def reply(self) -> tuple[bytes | None, dict[str, Any]]:
        return self.replies.get(timeout=WAIT_S)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def issue_request(service: str = "taxes", msg_id: str | None = None) -> p.IssueRequest:
    return p.IssueRequest(msg_id=msg_id or new_id(), service=service)


def test_every_inbound_kind_has_a_handler_and_its_topics_parse_back() -> None:
    topics = p.Topics("office-1")
    assert list(HANDLERS) == list(p.INBOUND)
    for kind, inbound in p.INBOUND.items():
        ident = "dev-1" if "{id}" in inbound.path else None
        assert topics.parse(topics.inbound(kind, "dev-1")) == (kind, ident)
    outbound = [topics.calls(), topics.queue("taxes"), topics.device_reply("k1")]
    outbound += [topics.counter_state("c1"), topics.kiosk_issue(p.ANY), topics.all()]
    outbound += [p.Topics("office-2").kiosk_issue("k1"), topics.kiosk_issue("k1") + "/x"]
    for topic in outbound:
        with pytest.raises(p.ProtocolError) as refused:
            topics.parse(topic)
        assert refused.value.code == "unknown_topic", topic


def test_kiosk_gets_a_ticket_and_the_queue_state_follows(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    display = device("display-d1")
    queue_state = Watcher(display, f"{display.topics.base}/queue/#")
    kiosk = device("kiosk-k1")
    reply = kiosk.request(kiosk.topics.kiosk_issue("k1"), issue_request(), timeout_s=WAIT_S)
    assert isinstance(reply, p.TicketReply)
    assert (reply.number, reply.people_ahead) == ("A001", 0)
    state = queue_state.wait_for(lambda t, d: t.endswith("/taxes") and d["waiting"] == 1)
    assert state["names"]["uk"] == "Місцеві податки"


def test_counter_next_calls_the_lobby_and_updates_its_state(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    display = device("display-d1")
    calls = Watcher(display, display.topics.calls())
    states = Watcher(display, f"{display.topics.base}/counter/+/state")
    kiosk = device("kiosk-k1")
    kiosk.request(kiosk.topics.kiosk_issue("k1"), issue_request("waste"), timeout_s=WAIT_S)
    panel = device("panel-p1")
    replies: queue.Queue[p.Message] = queue.Queue()
    panel.on_reply(lambda _cmd, reply: replies.put(reply))
    panel.send(panel.topics.counter_cmd("1"), p.CounterCommand(msg_id=new_id(), action="next"))
    reply = replies.get(timeout=WAIT_S)
    assert isinstance(reply, p.CommandReply)
    assert reply.ticket is not None
    assert (reply.state, reply.ticket.number) == ("open", "B001")
    call = calls.wait_for(lambda _t, d: d["ticket"] == "B001")
    assert (call["counter"], call["counter_name"], call["recall"]) == ("1", "Okienko 1", False)
    state = states.wait_for(lambda t, d: t.endswith("/1/state") and d["ticket"] is not None)
    assert state["ticket"]["number"] == "B001"

    # A recall changes only the ticket (its calls), and the counter's state follows.
    panel.send(panel.topics.counter_cmd("1"), p.CounterCommand(msg_id=new_id(), action="recall"))
    assert isinstance(replies.get(timeout=WAIT_S), p.CommandReply)
    assert calls.wait_for(lambda _t, d: d["ticket"] == "B001")["recall"] is True
    states.wait_for(lambda t, d: t.endswith("/1/state") and d["ticket"]["calls"] == 2)


def test_a_command_delivered_twice_is_applied_once(hub: RunningHub, broker: OfficeBroker) -> None:
    raw = RawClient(broker, "kiosk-k1")
    topic = p.Topics(broker.site).kiosk_issue("k1")
    request = issue_request(msg_id="same-id").encode()
    raw.send(topic, request, correlation=b"first")
    raw.send(topic, request, correlation=b"second")
    first, second = raw.reply(), raw.reply()
    raw.close()
    assert (first[0], second[0]) == (b"first", b"second")
    assert first[1] == second[1]
    assert hub.queue.store.count_tickets() == 1


def test_receipts_survive_a_hub_restart(
    start_hub: Callable[[], RunningHub], broker: OfficeBroker
) -> None:
    hub = start_hub()
    raw = RawClient(broker, "kiosk-k1")
    topic = p.Topics(broker.site).kiosk_issue("k1")
    raw.send(topic, issue_request(msg_id="before-restart").encode())
    before = raw.reply()[1]
    hub.stop()
    again = start_hub()
    raw.send(topic, issue_request(msg_id="before-restart").encode())
    after = raw.reply()[1]
    raw.close()
    assert after == before
    assert again.queue.store.count_tickets() == 1


def test_bad_payloads_get_clear_error_replies(hub: RunningHub, broker: OfficeBroker) -> None:
    raw = RawClient(broker, "kiosk-k1")
    topic = p.Topics(broker.site).kiosk_issue("k1")
    cases = {
        b"not json": "malformed",
        b"[1, 2]": "malformed",
        b'{"v": 2, "msg_id": "x", "service": "taxes"}': "unsupported_version",
        b'{"v": 1, "msg_id": "x"}': "invalid",
        b'{"v": 1, "msg_id": "x", "service": "taxes", "extra": 1}': "invalid",
        b'{"v": 1, "msg_id": "bad id!", "service": "taxes"}': "invalid",
        b'{"v": 1, "msg_id": "y", "service": "nope"}': "unknown_service",
        json.dumps({"v": 1, "msg_id": "z", "service": "x" * 20000}).encode(): "too_large",
    }
    for payload, code in cases.items():
        raw.send(topic, payload)
        _, answer = raw.reply()
        assert answer["error"]["code"] == code, (payload[:40], answer)
    raw.send(topic, issue_request().encode())
    assert raw.reply()[1]["number"] == "A001"
    raw.close()


def test_eservice_updates_over_mqtt_are_stored_once_and_in_their_own_order(
    hub: RunningHub, broker: OfficeBroker
) -> None:
    raw = RawClient(broker, "imesto")
    topic = p.Topics(broker.site).eservice_update()

    def update(msg_id: str, status: str, at: str, pin: str | None = None) -> bytes:
        return p.EServiceUpdate(
            msg_id=msg_id,
            system="imesto",
            reference="BB-2026-1",
            status=status,  # type: ignore[arg-type]
            at=at,  # type: ignore[arg-type]
            pin=pin,
        ).encode()

    raw.send(topic, update("u1", "received", "2026-03-02T08:00:00+00:00", pin="471100"))
    assert raw.reply()[1] | {"v": 1} == {
        "v": 1,
        "msg_id": "u1",
        "reference": "BB-2026-1",
        "duplicate": False,
        "current": True,
        "status": "received",
    }
    raw.send(topic, update("u3", "decided", "2026-03-04T08:00:00+00:00"))
    assert raw.reply()[1]["status"] == "decided"
    # A late, older update joins the timeline but does not replace the status.
    raw.send(topic, update("u2", "in_progress", "2026-03-03T08:00:00+00:00"))
    late = raw.reply()[1]
    assert (late["current"], late["status"]) == (False, "decided")
    raw.send(topic, update("u3", "decided", "2026-03-04T08:00:00+00:00"))
    assert raw.reply()[1]["duplicate"] is True
    raw.send(topic, b'{"v": 1, "msg_id": "u4", "system": "imesto"}')
    assert raw.reply()[1]["error"]["code"] == "invalid"
    raw.close()
    found = hub.bridge.eservices.lookup("bb-2026-1", "471100")
    assert found is not None
    assert found.status == "decided"
    assert [step.status for step in found.steps] == ["received", "in_progress", "decided"]


def test_a_display_cannot_issue_and_a_panel_cannot_act_for_another_counter(
    hub: RunningHub, broker: OfficeBroker, device: Callable[..., DeviceLink]
) -> None:
    topics = p.Topics(broker.site)
    display = RawClient(broker, "display-d1")
    display.send(topics.kiosk_issue("k1"), issue_request().encode())
    display.send(
        topics.counter_cmd("1"), p.CounterCommand(msg_id=new_id(), action="resume").encode()
    )
    panel = RawClient(broker, "panel-p1")
    panel.send(topics.counter_cmd("3"), p.CounterCommand(msg_id=new_id(), action="resume").encode())
    # A command the broker lets through is answered; once it is, the refused ones
    # (sent earlier on the same connections) are known to have been dropped.
    panel.send(topics.counter_cmd("1"), p.CounterCommand(msg_id=new_id(), action="resume").encode())
    assert panel.reply()[1]["state"] == "open"
    assert display.replies.empty()
    display.close()
    panel.close()
    assert hub.queue.store.count_tickets() == 0
    assert hub.queue.engine.counters["3"].state.value == "paused"
    resumed = [e.counter_id for e in hub.queue.store.events() if e.action is Action.RESUME]
    assert resumed == ["1"]


def test_devices_status_and_health_reach_the_hub(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    heard: queue.Queue[DeviceView] = queue.Queue()
    hub.bridge.on_device(heard.put)
    kiosk = device("kiosk-k1")
    kiosk.publish_health({"printer": p.PartHealth(state="paper_near_end")})
    while True:
        view = heard.get(timeout=WAIT_S)
        # Status and health are separate retained topics: wait until both arrived.
        if view.device_id == "k1" and view.health is not None and view.status is not None:
            break
    assert view.status.state == "online"
    assert view.health.parts["printer"].state == "paper_near_end"


def test_a_refused_device_status_lists_no_device(hub: RunningHub) -> None:
    topics = hub.bridge.topics
    hub.bridge.handle(topics.device_status("k9"), b"not json")
    hub.bridge.handle(topics.device_health("k9"), b'{"v": 1, "parts": {}}')
    assert "k9" not in hub.bridge.devices


def test_a_command_of_an_earlier_business_day_is_refused_and_not_applied(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    hub.queue.issue("taxes")
    panel = device("panel-p1")
    states = Watcher(panel, panel.topics.counter_state("1"))
    today = hub.queue.engine.day
    # The retained counter state tells a panel the hub's business day.
    assert states.wait_for(lambda _t, d: True)["business_day"] == today.isoformat()
    replies: queue.Queue[p.Message] = queue.Queue()
    panel.on_reply(lambda _cmd, reply: replies.put(reply))
    topic = panel.topics.counter_cmd("1")

    yesterday = today - timedelta(days=1)
    panel.send(topic, p.CounterCommand(msg_id=new_id(), action="next", business_day=yesterday))
    refused = replies.get(timeout=WAIT_S)
    assert isinstance(refused, p.ErrorReply)
    assert refused.error.code == "stale_day"
    assert yesterday.isoformat() in refused.error.message
    assert hub.queue.engine.counters["1"].current is None
    assert hub.queue.engine.waiting_count("taxes") == 1

    # Without the field (a device of an earlier version) it is applied as before; with
    # today's day too.
    panel.send(topic, p.CounterCommand(msg_id=new_id(), action="next"))
    first = replies.get(timeout=WAIT_S)
    assert isinstance(first, p.CommandReply)
    assert first.ticket is not None
    assert first.ticket.number == "A001"
    panel.send(topic, p.CounterCommand(msg_id=new_id(), action="recall", business_day=today))
    again = replies.get(timeout=WAIT_S)
    assert isinstance(again, p.CommandReply)
    assert again.ticket is not None
    assert again.ticket.calls == 2


def test_a_new_day_reaches_every_counters_state(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    hub.queue.issue("taxes")  # left waiting: the new day expires it
    panel = device("panel-p1")
    states = Watcher(panel, panel.topics.counter_state("2"))  # paused, free all along
    today = hub.queue.engine.day
    assert states.wait_for(lambda _t, d: True)["business_day"] == today.isoformat()
    hub.queue.clock = lambda: utc_now() + timedelta(days=1)
    assert hub.queue.roll_over() is not None
    tomorrow = (today + timedelta(days=1)).isoformat()
    states.wait_for(lambda _t, d: d["business_day"] == tomorrow)
