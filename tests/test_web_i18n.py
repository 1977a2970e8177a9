"""The portal's message catalogs: every message in sk, cs, uk and en, compiled as shipped."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

import hub.web

WEB = Path(hub.web.__file__).parent
LANGS = ("sk", "cs", "uk", "en")
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]


def extracted() -> set[str | tuple[str, ...]]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(WEB), METHODS, keywords=KEYWORDS):
        found.add(message)
    return found


def catalog(lang: str) -> Path:
    return WEB / "translations" / lang / "LC_MESSAGES" / "messages.po"


@pytest.mark.parametrize("lang", LANGS)
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


@pytest.mark.parametrize("lang", LANGS)
def test_the_shipped_mo_file_is_the_compiled_po_file(lang: str) -> None:
    with catalog(lang).open("rb") as file:
        po = read_po(file, locale=lang)
    with catalog(lang).with_suffix(".mo").open("rb") as file:
        shipped = read_mo(file)
    fresh = io.BytesIO()
    write_mo(fresh, po)
    fresh.seek(0)
    compiled = read_mo(fresh)
    assert messages(shipped) == messages(compiled)


def messages(cat: Catalog) -> dict[object, object]:
    def key(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {key(m.id): key(m.string) for m in cat if m.id}
