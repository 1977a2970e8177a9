"""Check-in on the hub: the service layer, the store, the bridge and a real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from appointment_helpers import insert_appointment, make_appointment, slot_open_now
from office_helpers import OfficeBroker, RunningHub
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from test_security_mqtt import Client
from test_service import Clock, open_queue

from hub.app import seed_demo
from hub.engine import QueueError
from hub.model import Action, AppointmentState, Change, TicketState
from hub.service import QueueService
from hub.store import Store, StoreError
from sync_agent import protocol as p


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(store_url: str, clock: Clock) -> Iterator[QueueService]:
    queue = open_queue(store_url, clock)
    seed_demo(queue)
    yield queue
    queue.store.close()


def book(store: Store, slot: datetime, *, seat: int = 0, **kw: Any) -> str:
    """Store a booking of ``taxes`` at ``slot`` (on ``seat``); return its code."""
    return insert_appointment(store, make_appointment("taxes", slot, **kw), seat=seat).code


def test_check_in_issues_the_ticket_and_audits_it(queue: QueueService, clock: Clock) -> None:
    code = book(queue.store, clock.now + timedelta(minutes=20), name="Ján K.")
    issued = queue.check_in(code, lang="uk", actor="kiosk:k1")
    ticket = issued.ticket
    assert (ticket.number, ticket.lang) == ("A001", "uk")
    assert ticket.slot_at == clock.now + timedelta(minutes=20)
    assert queue.store.ticket(ticket.id) == ticket
    appointment = queue.appointment(ticket.appointment or "")
    assert appointment is not None
    assert (appointment.code, appointment.name) == (code, "Ján K.")
    [event] = queue.store.events(ticket.id)
    assert (event.action, event.actor, event.detail) == (
        Action.ISSUE,
        "kiosk:k1",
        {"appointment": appointment.id},
    )


def test_unknown_codes_are_refused(queue: QueueService) -> None:
    with pytest.raises(QueueError) as refused:
        queue.check_in("99999999")
    assert refused.value.code == "unknown_booking"


def test_a_booking_is_checked_in_once_across_a_restart(
    queue: QueueService, store_url: str, clock: Clock
) -> None:
    code = book(queue.store, clock.now + timedelta(minutes=5))
    queue.check_in(code)
    queue.store.close()
    resumed = open_queue(store_url, clock)
    try:
        with pytest.raises(QueueError) as refused:
            resumed.check_in(code)
        assert refused.value.code == "checked_in"
        assert resumed.store.count_tickets() == 1
    finally:
        resumed.store.close()


def test_the_store_refuses_a_second_ticket_for_a_booking(queue: QueueService, clock: Clock) -> None:
    code = book(queue.store, clock.now + timedelta(minutes=5))
    first = queue.check_in(code).ticket
    second = queue.engine.issue("taxes", clock.now).subject
    assert second is not None
    copy = second.evolve(appointment=first.appointment, slot_at=first.slot_at)
    with pytest.raises(StoreError):
        queue.store.write(Change(tickets=(copy,), new_ticket_ids=frozenset({copy.id})))


def test_the_sweep_marks_bookings_nobody_checked_in(queue: QueueService, clock: Clock) -> None:
    slot = clock.now + timedelta(minutes=30)
    came, missed, later = (book(queue.store, slot, seat=seat) for seat in range(3))
    cancelled = book(queue.store, slot, seat=3, state=AppointmentState.CANCELLED)
    book(queue.store, slot + timedelta(hours=2))
    queue.check_in(came)
    assert queue.sweep_no_shows() == []
    clock.now = slot + timedelta(minutes=9)
    queue.check_in(later)
    clock.now = slot + timedelta(minutes=10, seconds=1)
    [lapsed] = queue.sweep_no_shows()
    assert (lapsed.code, lapsed.state) == (missed, AppointmentState.NO_SHOW)
    stored = queue.store.appointment_by_code(missed)
    assert stored is not None
    assert stored.state is AppointmentState.NO_SHOW
    assert queue.sweep_no_shows() == []
    for code, state in ((came, "booked"), (later, "booked"), (cancelled, "cancelled")):
        kept = queue.store.appointment_by_code(code)
        assert kept is not None
        assert kept.state.value == state
    event = queue.store.events()[-1]
    assert (event.action, event.from_state, event.to_state, event.detail) == (
        Action.NO_SHOW,
        "booked",
        "no_show",
        {"appointment": lapsed.id},
    )
    with pytest.raises(QueueError) as refused:
        queue.check_in(missed)
    assert refused.value.code == "too_late"


def test_a_called_appointment_that_does_not_come_is_a_ticket_no_show(
    queue: QueueService, clock: Clock
) -> None:
    code = book(queue.store, clock.now)
    ticket = queue.check_in(code).ticket
    queue.counter_action("2", "next")
    finished = queue.counter_action("2", "no_show").subject
    assert finished is not None
    assert (finished.id, finished.state) == (ticket.id, TicketState.NO_SHOW)


# -- over a real broker -----------------------------------------------------------------


@pytest.fixture
def kiosk(broker: OfficeBroker) -> Iterator[Client]:
    client = Client(broker, "kiosk-k1")
    client.subscribe(p.Topics(broker.site).device_reply("k1"))
    yield client
    client.close()


def check_in(
    kiosk: Client, broker: OfficeBroker, code: str, msg_id: str | None = None
) -> dict[str, Any]:
    """Publish a check-in of ``code`` as a kiosk does (message ``msg_id``, a new one if
    ``None``) and return the hub's answer."""
    topics = p.Topics(broker.site)
    msg_id = msg_id or uuid.uuid4().hex
    request = p.CheckInRequest(msg_id=msg_id, code=code, lang="en")
    kiosk.publish(
        topics.kiosk_checkin("k1"),
        request.encode(),
        response_topic=topics.device_reply("k1"),
        correlation=msg_id.encode(),
    )
    answer = kiosk.receive()
    assert answer.correlation == msg_id.encode()
    reply: dict[str, Any] = json.loads(answer.payload)
    return reply


def test_a_kiosk_checks_in_over_the_broker(
    hub: RunningHub, broker: OfficeBroker, kiosk: Client
) -> None:
    slot = slot_open_now()
    code = book(hub.queue.store, slot)
    msg_id = uuid.uuid4().hex
    reply = p.TicketReply.model_validate(check_in(kiosk, broker, code, msg_id))
    assert (reply.msg_id, reply.number, reply.service) == (msg_id, "A001", "taxes")
    assert reply.appointment_at == slot
    # The same message again (a resend, a redelivery): the same answer, no second ticket.
    again = p.TicketReply.model_validate(check_in(kiosk, broker, code, msg_id))
    assert again == reply
    assert hub.queue.store.count_tickets() == 1
    # Another message with the same booking: refused, clearly.
    refused = p.ErrorReply.model_validate(check_in(kiosk, broker, code))
    assert refused.error.code == "checked_in"


def test_a_retained_check_in_is_applied_once_across_a_hub_restart(
    start_hub: Callable[[], RunningHub], broker: OfficeBroker, kiosk: Client
) -> None:
    hub = start_hub()
    code = book(hub.queue.store, slot_open_now())
    topics = p.Topics(broker.site)
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = topics.device_reply("k1")
    props.CorrelationData = b"kept"
    request = p.CheckInRequest(msg_id="kept-1", code=code)
    kiosk.client.publish(
        topics.kiosk_checkin("k1"), request.encode(), qos=1, retain=True, properties=props
    )
    first = kiosk.receive()
    assert p.TicketReply.model_validate_json(first.payload).number == "A001"
    hub.stop()
    again = start_hub()  # subscribes anew: the broker hands it the retained check-in
    second = kiosk.receive()
    assert second.payload == first.payload
    assert again.queue.store.count_tickets() == 1


@pytest.mark.parametrize(
    ("shift", "state", "code"),
    [
        (timedelta(hours=2), AppointmentState.BOOKED, "too_early"),
        (timedelta(minutes=-30), AppointmentState.BOOKED, "too_late"),
        (timedelta(minutes=5), AppointmentState.CANCELLED, "cancelled"),
    ],
)
def test_a_kiosk_hears_why_a_check_in_is_refused(
    hub: RunningHub,
    broker: OfficeBroker,
    kiosk: Client,
    shift: timedelta,
    state: AppointmentState,
    code: str,
) -> None:
    booking = book(hub.queue.store, datetime.now(UTC) + shift, state=state)
    reply = p.ErrorReply.model_validate(check_in(kiosk, broker, booking))
    assert reply.error.code == code
    assert hub.queue.store.count_tickets() == 0


def test_a_malformed_code_is_answered_invalid(
    hub: RunningHub, broker: OfficeBroker, kiosk: Client
) -> None:
    topics = p.Topics(broker.site)
    payload = json.dumps({"v": 1, "msg_id": "bad-1", "code": "12' OR 1=1"}).encode()
    kiosk.publish(
        topics.kiosk_checkin("k1"),
        payload,
        response_topic=topics.device_reply("k1"),
        correlation=b"bad",
    )
    reply = p.ErrorReply.model_validate(json.loads(kiosk.receive().payload))
    assert (reply.msg_id, reply.error.code) == ("bad-1", "invalid")
    assert hub.queue.store.count_tickets() == 0


def test_replies_to_check_ins_go_to_the_kiosk_only(hub: RunningHub) -> None:
    topics = hub.bridge.topics
    assert hub.bridge.reply_topics(topics.kiosk_checkin("k1")) == {topics.device_reply("k1")}
