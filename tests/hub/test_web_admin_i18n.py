"""The admin pages in sk, cs and uk: every heading, label, button and message of the demo
office's admin pages comes from the catalog, and no English original is left on them."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from flask import Flask
from flask.testing import FlaskClient
from i18n_helpers import read_catalog
from web_helpers import csrf_token, visible_text

import hub.web
from hub.appointments import BookingRules
from hub.web.context import hub as hub_of

WEB = Path(hub.web.__file__).parent
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\(\w+\)s")

PAGES = [
    "/admin/services",
    "/admin/services/new",
    "/admin/services/taxes",
    "/admin/counters",
    "/admin/counters/new",
    "/admin/counters/1",
    "/admin/closures",
    "/admin/appointments",
    "/admin/booking/taxes",
    "/admin/devices",
    "/admin/users",
    "/admin/tokens",
    "/admin/branding",
    "/admin/statistics",
    "/admin/feedback",
    "/admin/signups",
]
"""Every admin page with its own template (the dashboard and the audit have their tests)."""

KEY_STRINGS = {
    "/admin/services": ["New service", "Daily limit", "Issuing"],
    "/admin/services/new": ["New service", "Opening hours", "Remote tickets", "Save"],
    "/admin/services/taxes": ["Priority tickets at kiosks", "Remote tickets per day"],
    "/admin/counters": ["New counter", "Name"],
    "/admin/counters/new": [
        "New counter",
        'Service codes in order of preference, e.g. "taxes, waste"',
    ],
    "/admin/counters/1": ["Save"],
    "/admin/closures": ["New closure", "Reason (shown to citizens)", "No closures ahead."],
    "/admin/appointments": ["Book for a caller", "Show", "Name or initials"],
    "/admin/booking/taxes": ["Takes appointments", "Seats per slot", "Hold a slot (min)"],
    "/admin/devices": ["Pair a new device", "Pairing code shown by the device", "Last seen"],
    "/admin/users": ["Add or change a user", "May sign in", "New password"],
    "/admin/tokens": ["New token", "System", "Create"],
    "/admin/branding": ["Branding and languages", "Office name", "Accent colour"],
    "/admin/statistics": [
        "Per service",
        "Per counter",
        "Per hour of day",
        "Appointments and walk-ins",
        "Priority tickets",
        "Notices to citizens",
        "Citizens' ratings",
        "E-service sign-ups",
        "Per clerk",
        "Download the tickets as CSV",
    ],
    "/admin/feedback": ["Citizens' comments", "No comments in this range."],
    "/admin/signups": ["E-service sign-up", "E-services (one per line)", "Desks:"],
}

SLOVAK = {
    "/admin/services": "Nová služba",
    "/admin/counters": "Nová priehradka",
    "/admin/closures": "Nové zatvorenie",
    "/admin/statistics": "Podľa hodiny dňa",
    "/admin/users": "Pridať alebo zmeniť používateľa",
}
"""A few Slovak texts as an office writes them (catches an empty or stale catalog)."""


@cache
def admin_msgids() -> tuple[str, ...]:
    """Every message the admin templates and admin.py show."""
    found: set[str] = set()
    for path in (WEB / "templates" / "admin", WEB):
        methods = [("*.html", "jinja2")] if path.name == "admin" else [("admin.py", "python")]
        for _, _, message, _, _ in extract_from_dir(str(path), methods, keywords=KEYWORDS):
            if isinstance(message, str):
                found.add(message)
    return tuple(sorted(found))


@cache
def translations(lang: str) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in read_catalog("hub.web", lang) if m.id}


def as_shown(message: str) -> re.Pattern[str]:
    """A message as it stands on a page: placeholders match a word or number (the values
    of the admin pages' placeholders), spaces any spaces."""
    pieces = []
    for part in PLACEHOLDER.split(message):
        piece = r"\s+".join(re.escape(word) for word in part.split())
        if part[:1].isspace():
            piece = r"\s+" + piece if piece else r"\s+"
        if part[-1:].isspace() and piece != r"\s+":
            piece += r"\s+"
        pieces.append(piece)
    return re.compile(r"(?<!\w)" + r"\S+?".join(pieces) + r"(?!\w)")


def leftovers(text: str, lang: str) -> list[str]:
    """The English originals (with another translation in ``lang``) found in ``text``.

    The translations are taken out first, so that an original inside its own translation
    ("Audit" in "Audit zmien") does not count.
    """
    catalog = translations(lang)
    for translated in sorted(set(catalog.values()), key=len, reverse=True):
        if PLACEHOLDER.sub("", translated).strip():
            text = as_shown(translated).sub("\u2003", text)
    return [
        msgid
        for msgid in admin_msgids()
        if catalog.get(msgid, msgid) != msgid
        and len(PLACEHOLDER.sub("", msgid).strip()) > 2  # a unit ("%(n)s s") is no text
        and as_shown(msgid).search(text)
    ]


@pytest.fixture
def office(admin: FlaskClient, app: Flask) -> FlaskClient:
    """The demo office's admin, with a service taking appointments."""
    book = hub_of(app).appointments
    book.save_rules(BookingRules(service="taxes", enabled=True, slot_min=20, seats=2))
    return admin


@pytest.mark.parametrize("lang", ["sk", "cs", "uk"])
@pytest.mark.parametrize("page", PAGES)
def test_admin_page_speaks_the_language(office: FlaskClient, page: str, lang: str) -> None:
    answer = office.get(page, query_string={"lang": lang})
    assert answer.status_code == 200
    text = visible_text(answer.get_data(as_text=True))
    catalog = translations(lang)
    for msgid in KEY_STRINGS[page]:
        assert catalog[msgid] != msgid
        assert " ".join(catalog[msgid].split()) in text, (msgid, catalog[msgid])
    if lang == "sk" and page in SLOVAK:
        assert SLOVAK[page] in text
    assert leftovers(text, lang) == []


def test_the_english_pages_keep_their_wording(office: FlaskClient) -> None:
    text = visible_text(office.get("/admin/statistics?lang=en").get_data(as_text=True))
    assert "Per hour of day" in text
    assert leftovers(text, "sk") != []  # the check sees English where it is


@pytest.mark.parametrize(
    ("lang", "flash"),
    [
        ("sk", "Zatvorenie bolo odstránené."),
        ("cs", "Uzavření bylo odstraněno."),
        ("uk", "Закриття видалено."),
    ],
)
def test_flash_messages_speak_the_language(
    office: FlaskClient, app: Flask, lang: str, flash: str
) -> None:
    queue = hub_of(app).queue
    day = queue.today().replace(year=queue.today().year + 1).isoformat()
    token = csrf_token(office, f"/admin/closures?lang={lang}")
    answer = office.post(
        "/admin/closures", data={"day": day, "reason": "Školenie", "csrf_token": token}
    )
    assert answer.status_code == 302
    page = visible_text(office.get("/admin/closures").get_data(as_text=True))
    assert translations(lang)["all day"] in page
    [closure] = queue.closures()
    office.post(f"/admin/closures/{closure.id}/remove", data={"csrf_token": token})
    assert flash in visible_text(office.get("/admin/closures").get_data(as_text=True))


@pytest.mark.parametrize("lang", ["sk", "cs", "uk"])
def test_validation_messages_speak_the_language(office: FlaskClient, lang: str) -> None:
    token = csrf_token(office, f"/admin/closures?lang={lang}")
    answer = office.post(
        "/admin/closures",
        data={"day": "2030-05-05", "start": "12:00", "end": "10:00", "csrf_token": token},
    )
    text = visible_text(answer.get_data(as_text=True))
    assert translations(lang)["The closure must end after it starts."] in text
    assert leftovers(text, lang) == []
