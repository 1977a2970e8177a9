"""Which language a page speaks: ``?lang=``, then the cookie, then the browser's wish."""

from __future__ import annotations

from typing import Final

from flask import Response, g, request
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from hub.web.context import hub

COOKIE: Final = "lang"
"""Remembers the citizen's choice for a year."""

ACCEPT_LANGUAGE_CHARS: Final = 256
"""Only this much of ``Accept-Language`` is read: real browsers send a few dozen
characters, and parsing an attacker's long one costs CPU for nothing."""


def languages() -> tuple[str, ...]:
    """The languages offered, the default first."""
    return hub().config.branding().languages


def select_locale() -> str:
    """Flask-Babel's locale selector: the language of the current request."""
    return request_language(languages())


def request_language(offered: tuple[str, ...]) -> str:
    """The current request's language among ``offered`` (worked out once per request)."""
    cached: str | None = g.get("lang")
    if cached is not None:
        return cached
    wanted = request.args.get("lang") or request.cookies.get(COOKIE)
    lang = negotiate(offered, wanted, request.headers.get("Accept-Language", ""))
    g.lang = lang
    return lang


def negotiate(offered: tuple[str, ...], wanted: str | None, accept: str) -> str:
    """The language of a page, from what the request says and the languages ``offered``.

    ``wanted`` (``?lang=`` or the cookie) if offered, else the best of the first
    :data:`ACCEPT_LANGUAGE_CHARS` of ``Accept-Language``, else the default (the first
    offered).
    """
    if wanted is not None and wanted in offered:
        return wanted
    if len(accept) > ACCEPT_LANGUAGE_CHARS:
        accept = accept[:ACCEPT_LANGUAGE_CHARS].rpartition(",")[0]
    return parse_accept_header(accept, LanguageAccept).best_match(offered) or offered[0]


def remember_choice(response: Response) -> Response:
    """Keep a ``?lang=`` choice in a cookie (an ``after_request`` hook)."""
    return keep_choice(response, languages())


def keep_choice(response: Response, offered: tuple[str, ...]) -> Response:
    """Keep a ``?lang=`` choice among ``offered`` in the :data:`COOKIE`."""
    wanted = request.args.get("lang")
    if wanted and wanted in offered and request.cookies.get(COOKIE) != wanted:
        response.set_cookie(COOKIE, wanted, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response
