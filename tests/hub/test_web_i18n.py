"""The portal's message catalogs: every message in sk, cs, uk and en (test_i18n.py checks
that each shipped .mo file is its compiled .po file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import hub.web
from common.i18n import LANGUAGES

WEB = Path(hub.web.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def extracted() -> set[str | tuple[str, ...]]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(WEB), METHODS, keywords=KEYWORDS):
        found.add(message)
    return found


def catalog(lang: str) -> Path:
    return WEB / "translations" / lang / "LC_MESSAGES" / "messages.po"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_portal_message_is_translated(lang: str) -> None:
    with catalog(lang).open("rb") as file:
        po = read_po(file, locale=lang)
    translated = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in po if m.id}
    missing = [m for m in extracted() if m not in translated]
    assert missing == []
    empty = [
        key
        for key, m in translated.items()
        if not all(m.string if isinstance(m.string, tuple) else [m.string])
    ]
    assert empty == []
