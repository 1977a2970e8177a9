"""A marked call on the hub's /display page: its number carries the same mark as its
printed ticket and the TV's call screen (■ appointment, » priority, ▲ remote), named for
screen readers in the page's language; a walk-in's call has none, and a priority's mark
never tells why (the hub's calls carry no reason)."""

from __future__ import annotations

import re

import pytest
from flask import Flask, render_template
from lobby_helpers import lobby_call, scene_of

from hub.messages import calls_of
from hub.model import Priority
from hub.service import QueueService
from lobby.catalog import catalog
from lobby.content import APPOINTMENT_MARK, PRIORITY_MARK, REMOTE_MARK
from sync_agent.protocol import Call

REASONS = ("disability", "pregnancy", "with_child", "tehot", "postih")
"""Words of the priority's reasons, in the code and in Slovak: none may reach the page."""


def fragment(app: Flask, lang: str, *calls: Call) -> str:
    """The page's live part once ``calls`` were made in turn (the last one is current)."""
    with app.test_request_context(f"/display/fragment?lang={lang}"):
        return render_template(
            "lobby/_display.html",
            scene=scene_of(*calls),
            fresh=False,
            labels=catalog(lang),
            lang=lang,
            query={"lang": lang},
        )


def named_mark(named: str, mark: str) -> str:
    """The page's mark ``mark``, named ``named`` for screen readers."""
    return f'<span class="lobby-mark" role="img" aria-label="{named}" title="{named}">{mark}</span>'


@pytest.mark.parametrize(
    ("kind", "lang", "named", "mark"),
    [
        ("appointment", "sk", "objednaný termín", APPOINTMENT_MARK),
        ("appointment", "en", "appointment", APPOINTMENT_MARK),
        ("priority", "sk", "prednosť", PRIORITY_MARK),
        ("remote", "sk", catalog("sk").label("remote"), REMOTE_MARK),
    ],
)
def test_a_marked_call_is_marked(app: Flask, kind: str, lang: str, named: str, mark: str) -> None:
    html = fragment(
        app,
        lang,
        lobby_call("B007", counter="3", **{kind: True}),
        lobby_call("C001", counter="3"),
        lobby_call("A042", counter="3", **{kind: True}),
    )
    shown = named_mark(named, mark)
    assert f'<strong class="lobby-ticket">A042{shown}</strong>' in html
    assert f'<span class="lobby-old">B007{shown}</span>' in html
    assert '<span class="lobby-old">C001</span>' in html
    assert html.count(shown) == 2
    for reason in REASONS:
        assert reason not in html


def test_a_priority_appointments_call_has_both_marks(app: Flask) -> None:
    html = fragment(
        app,
        "sk",
        lobby_call("B007", counter="3", priority=True, appointment=True),
        lobby_call("A042", counter="3"),
    )
    mark = named_mark("prednosť", PRIORITY_MARK)
    assert '<span class="lobby-old">B007<span class="lobby-mark"' in html
    assert f"{APPOINTMENT_MARK}</span>{mark}</span>" in html  # both marks, appointment first
    for reason in REASONS:
        assert reason not in html


def test_the_display_page_shows_no_mark_for_walk_ins(app: Flask) -> None:
    html = fragment(app, "en", lobby_call("A001", counter="3"))
    assert "lobby-mark" not in html
    assert re.search(r'class="lobby-ticket">A001</strong>', html)


def test_the_hubs_call_says_priority_but_not_why(web_queue: QueueService) -> None:
    issued = web_queue.issue("taxes", priority=Priority.PREGNANCY)
    counter = next(c for c in web_queue.counters() if "taxes" in c.services)
    change = web_queue.counter_action(counter.id, "next")
    (made,) = calls_of(change, web_queue.engine)
    assert made.ticket_id == issued.ticket.id
    assert made.priority is True
    assert "pregnancy" not in made.encode().decode()
