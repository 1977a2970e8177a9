"""Hostile priority requests: an unknown reason over MQTT or the API, and priority for a
service that issues none, are refused with a clear error and issue nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from flask.testing import FlaskClient
from office_helpers import RunningHub

from hub.service import QueueService
from hub.users import ApiTokens
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

API = "/api/v1"


def test_an_unknown_reason_over_mqtt_is_refused(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    kiosk = device("kiosk-k1")
    topic = kiosk.topics.kiosk_issue("k1")
    for reason in ("vip", "DISABILITY", "", "x" * 5000):
        # A request no honest kiosk can build: its reason is none of the protocol's.
        forged = p.IssueRequest.model_construct(
            v=1, msg_id=f"forged-{len(reason)}-{reason[:3]}", service="taxes", priority=reason
        )
        reply = kiosk.request(topic, forged, timeout_s=10)
        assert isinstance(reply, p.ErrorReply), reply
        assert reply.error.code == "invalid"
        assert "priority" in reply.error.message
    assert hub.queue.store.count_tickets() == 0


def test_priority_for_a_service_without_it_is_refused_over_mqtt(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    taxes = hub.queue.engine.services["taxes"]
    hub.queue.save_service(dataclasses.replace(taxes, priority_allowed=False))
    kiosk = device("kiosk-k1")
    request = p.IssueRequest(msg_id="prio", service="taxes", priority="age")
    reply = kiosk.request(kiosk.topics.kiosk_issue("k1"), request, timeout_s=10)
    assert isinstance(reply, p.ErrorReply), reply
    assert reply.error.code == "priority_not_offered"
    assert hub.queue.store.count_tickets() == 0


def test_the_api_refuses_an_unknown_reason_and_a_service_without_priority(
    client: FlaskClient, web_queue: QueueService
) -> None:
    clerks = ApiTokens(web_queue.store).issue("clerks", ("counters",))
    headers = {"Authorization": f"Bearer {clerks}"}
    for reason in ("vip", 3, ["age"], "age" * 100):
        answer = client.post(
            f"{API}/tickets", json={"service": "taxes", "priority": reason}, headers=headers
        )
        assert answer.status_code == 422, answer.get_data(as_text=True)
    taxes = web_queue.engine.services["taxes"]
    web_queue.save_service(dataclasses.replace(taxes, priority_allowed=False))
    answer = client.post(
        f"{API}/tickets", json={"service": "taxes", "priority": "age"}, headers=headers
    )
    assert answer.status_code == 409
    assert answer.get_json()["error"]["code"] == "priority_not_offered"
    assert web_queue.store.count_tickets() == 0
