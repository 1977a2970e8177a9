"""An appointment's call on the hub's /display page: its number carries the same mark as
its printed ticket and the TV's call screen, named for screen readers in the page's
language; a walk-in's call has none."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask, render_template

from lobby.catalog import catalog
from lobby.content import APPOINTMENT_MARK, REMOTE_MARK, Lobby
from sync_agent.protocol import Call


def call(ticket: str, *, appointment: bool) -> Call:
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
    )


def fragment(app: Flask, lang: str, *calls: Call) -> str:
    """The page's live part once ``calls`` were made in turn (the last one is current)."""
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


@pytest.mark.parametrize(("lang", "named"), [("sk", "objednaný termín"), ("en", "appointment")])
def test_an_appointments_call_is_marked(app: Flask, lang: str, named: str) -> None:
    html = fragment(
        app,
        lang,
        call("B007", appointment=True),
        call("C001", appointment=False),
        call("A042", appointment=True),
    )
    mark = (
        f'<span class="lobby-mark" role="img" aria-label="{named}" title="{named}">'
        f"{APPOINTMENT_MARK}</span>"
    )
    assert f'<strong class="lobby-ticket">A042{mark}</strong>' in html
    assert f'<span class="lobby-old">B007{mark}</span>' in html
    assert '<span class="lobby-old">C001</span>' in html
    assert html.count(mark) == 2


def test_the_display_page_shows_no_mark_for_walk_ins(app: Flask) -> None:
    html = fragment(app, "en", call("A001", appointment=False))
    assert "lobby-mark" not in html
    assert re.search(r'class="lobby-ticket">A001</strong>', html)


def test_a_remote_tickets_call_is_marked(app: Flask) -> None:
    remote = call("A043", appointment=False).model_copy(update={"remote": True})
    html = fragment(app, "sk", remote)
    named = catalog("sk").label("remote")
    mark = (
        f'<span class="lobby-mark" role="img" aria-label="{named}" title="{named}">'
        f"{REMOTE_MARK}</span>"
    )
    assert f'<strong class="lobby-ticket">A043{mark}</strong>' in html
