"""Which language a page speaks: ``?lang=``, then the cookie, then the browser's wish."""

from __future__ import annotations

from typing import Final

from flask import Response, g, request

from hub.web.context import hub

COOKIE: Final = "lang"
"""Remembers the citizen's choice for a year."""


def languages() -> tuple[str, ...]:
    """The languages offered, the default first."""
    return hub().config.branding().languages


def select_locale() -> str:
    """Flask-Babel's locale selector: the language of the current request."""
    cached: str | None = g.get("lang")
    if cached is not None:
        return cached
    offered = languages()
    wanted = request.args.get("lang") or request.cookies.get(COOKIE)
    lang = (
        wanted if wanted in offered else request.accept_languages.best_match(offered) or offered[0]
    )
    g.lang = lang
    return lang


def remember_choice(response: Response) -> Response:
    """Keep a ``?lang=`` choice in a cookie (an ``after_request`` hook)."""
    wanted = request.args.get("lang")
    if wanted and wanted in languages() and request.cookies.get(COOKIE) != wanted:
        response.set_cookie(COOKIE, wanted, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response
