"""Check-in of a remote ticket on the hub: a kiosk's request over a real broker, and the
presence rule at the counters afterwards (docs/queue.md, docs/protocol.md)."""

from __future__ import annotations

import pytest
from appointment_helpers import open_for_remote
from office_helpers import OfficeBroker, RunningHub
from test_appointment_checkin import check_in, kiosk
from test_security_mqtt import Client

from hub.messages import calls_of
from sync_agent import protocol as p

__all__ = ["kiosk"]  # the fixture, shared with the appointment's check-in tests


def test_a_remote_ticket_is_checked_in_at_a_kiosk_then_called(
    hub: RunningHub, broker: OfficeBroker, kiosk: Client
) -> None:
    queue = hub.queue
    open_for_remote(queue, max_passes=3)
    remote = queue.issue_remote("taxes", lang="en").ticket
    walk_in = queue.issue("taxes").ticket
    code = remote.remote_code
    assert code is not None
    # Not checked in: the counter calls the walk-in behind it.
    first = queue.counter_action("2", "next").subject
    assert first is not None
    assert first.id == walk_in.id
    # The kiosk types (or scans) the six digits.
    assert p.parse_checkin_qr(p.remote_qr(code)) == code
    reply = p.TicketReply.model_validate(check_in(kiosk, broker, code))
    assert (reply.ticket_id, reply.number, reply.remote) == (remote.id, remote.number, True)
    assert reply.appointment_at is None
    again = p.ErrorReply.model_validate(check_in(kiosk, broker, code))
    assert again.error.code == "checked_in"
    # Checked in: called next, and the call is marked.
    change = queue.counter_action("2", "next")
    assert change.subject is not None
    assert change.subject.id == remote.id
    [call] = queue.read(lambda engine: calls_of(change, engine))
    assert call.remote
    assert not call.appointment


def test_an_unknown_remote_code_is_refused(
    hub: RunningHub, broker: OfficeBroker, kiosk: Client
) -> None:
    reply = p.ErrorReply.model_validate(check_in(kiosk, broker, "000000"))
    assert reply.error.code == "unknown_booking"
    assert hub.queue.store.count_tickets() == 0


@pytest.mark.parametrize("code", ["12345", "1234567", "poradovnik:ticket:123456"])
def test_codes_of_other_lengths_are_invalid(code: str) -> None:
    with pytest.raises(ValueError, match="code"):
        p.CheckInRequest(msg_id="m", code=code)


def test_the_scanner_texts_of_both_kinds_parse() -> None:
    assert p.parse_checkin_qr("poradovnik:ticket:123456") == "123456"
    assert p.parse_checkin_qr("poradovnik:ticket:12345678") is None
    assert p.parse_checkin_qr("poradovnik:appointment:123456") is None
    assert p.parse_checkin_qr(" 123456 ") == "123456"
    assert p.parse_checkin_qr("12345678") == "12345678"
