"""Whatever a branch's account sends, the consumer refuses what is bad and goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from city_helpers import TestBranch, batch, event

from city.consumer import CityConsumer
from city.store import MAX_SEQ, CityError, CityStore, check_batch
from sync_agent.city_protocol import CITY_MAX_PAYLOAD_BYTES, HistoryBatch, decode_city
from sync_agent.protocol import ProtocolError

pytestmark = pytest.mark.postgres


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def batch_json(**changes: object) -> bytes:
    data = json.loads(batch("a", 1, 3).encode())
    data.update(changes)
    return json.dumps(data).encode()


def event_json(**changes: object) -> dict[str, object]:
    return {**json.loads(event(1).model_dump_json()), **changes}


def with_literal(literal: bytes) -> bytes:
    """A batch whose event's detail holds ``literal`` as written (``json`` would not write it)."""
    return batch_json(events=[event_json(detail={"n": "LITERAL"})]).replace(b'"LITERAL"', literal)


ATTACKS: dict[str, bytes] = {
    "not json": b"\xff\xfe{",
    "empty": b"",
    "oversized": b'{"v": 1, "pad": "' + b"x" * CITY_MAX_PAYLOAD_BYTES + b'"}',
    "deep": json.dumps({"v": 1, "site": "a", "x": nested(200)}).encode(),
    "deep detail": batch_json(events=[event_json(detail=nested(100))]),
    "another version": batch_json(v=2),
    "wrong site": batch_json(site="b"),
    "negative seq": batch_json(events=[event_json(seq=-5)]),
    "zero first_available": batch_json(first_available=0),
    "huge seq": batch_json(events=[event_json(seq=MAX_SEQ + 1)], first_available=MAX_SEQ),
    "huge number": batch_json(events=[event_json(seq=10**400)]),
    "not consecutive": batch_json(events=[event_json(seq=1), event_json(seq=3)]),
    "no events": batch_json(events=[]),
    "NUL in a text": batch_json(events=[event_json(actor="a\u0000b")]),
    "NUL in detail": batch_json(events=[event_json(detail={"k": "a\u0000b"})]),
    "bad date": batch_json(events=[event_json(business_day="2026-13-45")]),
    "naive time": batch_json(events=[event_json(at="2026-12-07T08:00:00")]),
    "extra field": batch_json(drop="table"),
    "a list": b"[1, 2, 3]",
    "too many events": batch_json(events=[event_json(seq=s) for s in range(1, 102)]),
    "long actor": batch_json(events=[event_json(actor="x" * 129)]),
    "detail nested within the payload's bound": batch_json(events=[event_json(detail=nested(6))]),
    "wide detail": batch_json(events=[event_json(detail={"k": list(range(1000))})]),
    "many detail keys": batch_json(events=[event_json(detail={str(k): k for k in range(40)})]),
    "long detail string": batch_json(events=[event_json(detail={"k": "x" * 5000})]),
    "long detail key": batch_json(events=[event_json(detail={"k" * 2000: 1})]),
    "detail integer beyond 64 bits": batch_json(events=[event_json(detail={"n": 2**64})]),
    "a number of 5000 digits": with_literal(b"1" * 5000),
    "NaN": with_literal(b"NaN"),
    "Infinity": with_literal(b"-Infinity"),
    "a float beyond a double": with_literal(b"1e400"),
}


def test_hostile_batches_are_refused_and_the_consumer_goes_on(
    consumer: CityConsumer,
    add_branch: Callable[[str], TestBranch],
    city_store: CityStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    branch = add_branch("a")
    add_branch("b")
    consumer.resync()
    branch.wait_for_ack(0)
    for name, payload in ATTACKS.items():
        assert branch.send_raw(payload), name
    # On another branch's topic: the broker's ACL refuses it (the branch may not write it).
    branch.send_raw(batch("b", 1, 3).encode(), topic="poradovnik/v1/b/city/history")
    branch.send(batch("a", 1, 5))
    branch.wait_for_ack(5)
    assert consumer.connection.connected.is_set()
    events = city_store.events(date(2026, 1, 1), date(2027, 1, 1))
    assert [(e.site, e.seq) for e in events] == [("a", s) for s in range(1, 6)]
    assert "refused a history batch" in caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_attack_is_refused_by_the_schema_or_the_store_check(name: str) -> None:
    """Each is refused with a reason before any SQL, never with another exception."""
    with pytest.raises((ProtocolError, CityError)):
        check_batch("a", decode_city(HistoryBatch, ATTACKS[name]))


def test_the_hubs_own_details_fit_the_bounds() -> None:
    """What a hub writes (e.g. a number block's) passes, and comes back as it went."""
    detail = {"device": "kiosk-1", "block": "b1", "first_seq": 1, "last_seq": 50, "x": [1.5]}
    sent = batch("a", 1, 1).events[0].model_copy(update={"detail": detail})
    payload = HistoryBatch(site="a", first_available=1, events=[sent]).encode()
    assert decode_city(HistoryBatch, payload).events[0].detail == detail
