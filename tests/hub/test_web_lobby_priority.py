"""A priority ticket's call on the hub's /display page: a discreet mark beside the number,
named only "priority" for screen readers, never why; the hub's calls carry no reason."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, render_template

from hub.messages import calls_of
from hub.model import Priority
from hub.service import QueueService
from lobby.catalog import catalog
from lobby.content import APPOINTMENT_MARK, PRIORITY_MARK, Lobby
from sync_agent.protocol import Call


def call(ticket: str, *, priority: bool, appointment: bool = False) -> Call:
    return Call(
        ticket=ticket,
        ticket_id=ticket,
        counter="3",
        counter_name="Okienko 3",
        service="taxes",
        called_at=datetime.now(UTC),
        recall=False,
        calls=1,
        appointment=appointment,
        priority=priority,
    )


def fragment(app: Flask, lang: str, *calls: Call) -> str:
    lobby = Lobby(min_show_s=0.0, highlight_s=1.0)
    for n, made in enumerate(calls):
        lobby.call(made)
        lobby.advance(float(n))
    with app.test_request_context(f"/display/fragment?lang={lang}"):
        return render_template(
            "lobby/_display.html",
            scene=lobby.scene(100.0),
            fresh=False,
            labels=catalog(lang),
            lang=lang,
            query={"lang": lang},
        )


def test_a_priority_call_is_marked_discreetly(app: Flask) -> None:
    html = fragment(
        app,
        "sk",
        call("B007", priority=True, appointment=True),
        call("C001", priority=False),
        call("A042", priority=True),
    )
    mark = (
        '<span class="lobby-mark" role="img" aria-label="prednosť" title="prednosť">'
        f"{PRIORITY_MARK}</span>"
    )
    assert f'<strong class="lobby-ticket">A042{mark}</strong>' in html
    assert '<span class="lobby-old">B007<span class="lobby-mark"' in html
    assert f"{APPOINTMENT_MARK}</span>{mark}</span>" in html  # both marks, appointment first
    assert '<span class="lobby-old">C001</span>' in html
    for reason in ("disability", "pregnancy", "with_child", "tehot", "postih"):
        assert reason not in html


def test_the_hubs_call_says_priority_but_not_why(web_queue: QueueService) -> None:
    issued = web_queue.issue("taxes", priority=Priority.PREGNANCY)
    counter = next(c for c in web_queue.counters() if "taxes" in c.services)
    change = web_queue.counter_action(counter.id, "next")
    (made,) = calls_of(change, web_queue.engine)
    assert made.ticket_id == issued.ticket.id
    assert made.priority is True
    assert "pregnancy" not in made.encode().decode()
