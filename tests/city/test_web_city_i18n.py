"""Every text of the city's pages is translated in sk, cs, uk and en.

A text comes from the city's catalog (``city/web/translations``) or, for those the city
shares with a branch's pages, from the hub's (``hub/web/translations``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from i18n_helpers import read_catalog

import city.web
from common.i18n import LANGUAGES

WEB = Path(city.web.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def translated(package: str, lang: str) -> set[str]:
    """The message ids (singular) the catalog of ``package`` gives a text in ``lang``."""
    return {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in read_catalog(package, lang)
        if m.id and all(m.string if isinstance(m.string, tuple) else [m.string])
    }


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_city_page_text_is_translated(lang: str) -> None:
    known = translated("city.web", lang) | translated("hub.web", lang)
    wanted = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(str(WEB), METHODS, keywords=KEYWORDS)
    }
    assert sorted(wanted - known) == []
    # The city's catalog holds only what the hub's does not.
    assert translated("city.web", lang) & translated("hub.web", lang) == set()
