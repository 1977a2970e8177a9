"""The lobby display as a web page at ``/display``, for a smart TV's browser.

It shows what the HDMI call screen shows, from the same content model
(:class:`~lobby.content.Lobby`, kept by the hub's
:class:`~hub.callboard.CallBoard`) and the same labels (the display's
catalogs, :mod:`lobby.catalog`): the current call in large type, the
previous calls, each service's waiting count and estimated wait, the clock and the
office's name. Calls that come together take turns, each current for the display's
``min_show_s``. The page needs no sign-in, like the TV in the lobby.

``static/live.js`` listens to ``/live/queue`` and swaps in ``/display/fragment`` on
every change (the board wakes the stream when a waiting call's turn comes too);
``static/lobby.js`` chimes (Web Audio) at each new call and keeps the clock. Without
JavaScript a ``<noscript>`` refresh every 10 s keeps the page current.

``?lang=sk`` fixes the language (else the browser's); ``?counters=1,2`` shows only the
calls of those counters and the services they serve.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from flask import Blueprint, Response, abort, render_template, request, url_for

from hub.callboard import Counters
from hub.web.context import hub
from hub.web.i18n import select_locale
from hub.web.portal import LIVE_URL
from lobby.catalog import catalog

bp = Blueprint("lobby", __name__)

MAX_COUNTERS: Final = 32
"""The most counters one page may name in ``?counters=``."""


def _counters() -> Counters:
    """The ``?counters=`` filter: known counter ids, or ``None`` for all (else 404)."""
    wanted = request.args.get("counters", "").strip()
    if not wanted:
        return None
    ids = frozenset(part.strip() for part in wanted.split(",") if part.strip())
    known = hub().queue.read(lambda engine: set(engine.counters))
    if not ids or len(ids) > MAX_COUNTERS or not ids <= known:
        abort(404)
    return ids


def _context() -> dict[str, Any]:
    """What the page and its fragment show now, in the request's language."""
    current = hub()
    counters = _counters()
    board = current.board
    scene = board.scene(counters)
    lang = select_locale()
    query = {k: v for k, v in request.args.items() if k in ("lang", "counters")}
    return {
        "scene": scene,
        "fresh": board.is_new(scene),
        "labels": catalog(lang),
        "lang": lang,
        "query": query,
    }


def _html(body: str) -> Response:
    response = Response(body, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/display")
def display() -> Response:
    """The whole lobby display page: header with clock, the call, last calls, services."""
    context = _context()
    settings = hub().settings
    now = datetime.now(settings.site.tzinfo)
    return _html(
        render_template(
            "lobby/display.html",
            live=LIVE_URL,
            fragment=url_for("lobby.fragment", **context["query"]),
            timezone=settings.site.timezone,
            now=now,
            **context,
        )
    )


@bp.get("/display/fragment")
def fragment() -> Response:
    """The display's live part, for live.js."""
    return _html(render_template("lobby/_display.html", **_context()))
