"""Whatever a branch's account sends, the consumer refuses what is bad and goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from city_helpers import TestBranch, batch, event

from city.consumer import CityConsumer
from city.store import MAX_SEQ, CityStore
from sync_agent.city_protocol import CITY_MAX_PAYLOAD_BYTES

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
