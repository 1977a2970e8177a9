"""Which language a city page speaks.

The hub's rule (``?lang=``, the cookie, the browser's wish; :mod:`hub.web.i18n`) over
``[city] languages``.
"""

from __future__ import annotations

from flask import Response

from city.web.context import city
from hub.web.i18n import keep_choice, request_language


def languages() -> tuple[str, ...]:
    """The languages offered, the default first."""
    return tuple(city().settings.city.languages)


def select_locale() -> str:
    """Flask-Babel's locale selector: the language of the current request."""
    return request_language(languages())


def remember_choice(response: Response) -> Response:
    """Keep a ``?lang=`` choice in a cookie (an ``after_request`` hook)."""
    return keep_choice(response, languages())
