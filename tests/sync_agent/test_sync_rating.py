"""A counter's rating buttons over the real broker: ``counter/<id>/rating`` (addition to v1)."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable

import pytest
from office_helpers import OfficeBroker, RunningHub
from test_sync import WAIT_S, RawClient, new_id

from sync_agent import protocol as p
from sync_agent.link import DeviceLink


def finish_one(hub: RunningHub, service: str = "taxes") -> str:
    """A ticket called and finished at counter 1 by the clerk ``web:jana``; its number."""
    number = hub.queue.issue(service).ticket.number
    hub.queue.counter_action("1", "next", actor="web:jana")
    hub.queue.counter_action("1", "done", actor="web:jana")
    return number


def stored(hub: RunningHub) -> list[tuple[str, int, str, str | None, str | None]]:
    day = hub.queue.today()
    return [
        (r.number, r.rating, r.source, r.counter, r.clerk)
        for r in hub.bridge.feedback.ratings(day, day)
    ]


def test_a_panel_rates_the_visit_just_finished_at_its_counter(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    finish_one(hub)
    number = finish_one(hub)
    panel = device("panel-p1")
    replies: queue.Queue[p.Message] = queue.Queue()
    panel.on_reply(lambda _request, reply: replies.put(reply))
    panel.send(panel.topics.counter_rating("1"), p.CounterRating(msg_id=new_id(), rating=5))
    reply = replies.get(timeout=WAIT_S)
    assert isinstance(reply, p.RatingReply)
    assert (reply.rated, reply.rating) == (number, 5)
    assert stored(hub) == [(number, 5, "counter", "1", "web:jana")]
    # The next press rates the same visit again: refused, the first rating stays.
    panel.send(panel.topics.counter_rating("1"), p.CounterRating(msg_id=new_id(), rating=1))
    again = replies.get(timeout=WAIT_S)
    assert isinstance(again, p.ErrorReply)
    assert again.error.code == "already_rated"
    assert stored(hub) == [(number, 5, "counter", "1", "web:jana")]


def test_a_resent_rating_gets_its_first_answer(hub: RunningHub, broker: OfficeBroker) -> None:
    number = finish_one(hub)
    raw = RawClient(broker, "panel-p1")
    topic = p.Topics(broker.site).counter_rating("1")
    rating = p.CounterRating(msg_id="same-id", rating=3).encode()
    raw.send(topic, rating, correlation=b"first")
    raw.send(topic, rating, correlation=b"second")
    first, second = raw.reply(), raw.reply()
    raw.close()
    assert first[1] == second[1] == {"v": 1, "msg_id": "same-id", "rated": number, "rating": 3}
    assert stored(hub) == [(number, 3, "counter", "1", "web:jana")]


def test_nothing_finished_at_the_counter_is_refused(hub: RunningHub, broker: OfficeBroker) -> None:
    hub.queue.issue("taxes")
    hub.queue.counter_action("1", "next")  # called, not finished
    raw = RawClient(broker, "panel-p1")
    raw.send(
        p.Topics(broker.site).counter_rating("1"),
        p.CounterRating(msg_id=new_id(), rating=5).encode(),
    )
    answer = raw.reply()[1]
    raw.close()
    assert answer["error"]["code"] == "no_ticket"
    assert stored(hub) == []


@pytest.mark.parametrize(
    "payload",
    [
        {"v": 1, "msg_id": "x", "rating": 0},
        {"v": 1, "msg_id": "x", "rating": 6},
        {"v": 1, "msg_id": "x", "rating": "5"},
        {"v": 1, "msg_id": "x", "rating": True},
        {"v": 1, "msg_id": "x", "rating": 4.5},
        {"v": 1, "msg_id": "x", "rating": 5.0},
        {"v": 1, "msg_id": "x"},
        {"v": 1, "msg_id": "x", "rating": 5, "ticket_id": "a" * 32},
        {"v": 1, "msg_id": "bad id!", "rating": 5},
    ],
)
def test_hostile_ratings_are_refused(
    hub: RunningHub, broker: OfficeBroker, payload: dict[str, object]
) -> None:
    finish_one(hub)
    raw = RawClient(broker, "panel-p1")
    raw.send(p.Topics(broker.site).counter_rating("1"), json.dumps(payload).encode())
    answer = raw.reply()[1]
    raw.close()
    assert answer["error"]["code"] == "invalid"
    assert stored(hub) == []
