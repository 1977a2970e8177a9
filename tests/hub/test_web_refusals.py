"""Refusals on the admin and clerk pages speak the page's language (hub.web.refusals).

The queue, the booking book and the other layers refuse in English with a stable code;
the pages show the code's text from the catalog, with the refusal's values put in, and
never the English message. Every code raised anywhere in the hub has a text in every
language, with the placeholders its raise sites fill.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from i18n_helpers import read_catalog
from web_helpers import ADMIN_PASSWORD, csrf_token, visible_text

import hub
from common.i18n import LANGUAGES
from hub.service import QueueError, QueueService
from hub.users import Users
from hub.web.refusals import DEFAULTS, REFUSALS, refusal_text

HUB = Path(hub.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")

CODED = {"QueueError", "BookingError", "StoreError"}
"""The errors whose code is their first argument; any other names it as ``code=``."""

HELPERS = {"_hours_error": "invalid_hours"}
"""Functions that make a refusal of one code, their second argument its detail."""

COMPUTED = {"service_closed", "outside_hours", "cut_off", "already_open", "already_paused"}
"""Codes the engine computes (``Availability.refused``, ``already_<state>``)."""


def english(key: str) -> str:
    """The message id (the English text) of refusal ``key``, as the catalogs have it."""
    msgid = REFUSALS[key]._args[0]  # what lazy_gettext was given
    assert isinstance(msgid, str)
    return msgid


def in_catalog(lang: str) -> dict[str, str]:
    return {str(m.id): str(m.string) for m in read_catalog("hub.web", lang) if m.id}


@dataclass(frozen=True)
class Raised:
    """One place in the hub that raises a coded refusal."""

    where: str
    code: str
    detail: str | None
    params: frozenset[str] | None
    """The names of the values it passes (``None``: not a literal, unknown here)."""


def _constant(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _params(call: ast.Call) -> frozenset[str] | None:
    for keyword in call.keywords:
        if keyword.arg == "params":
            if not isinstance(keyword.value, ast.Dict):
                return None
            return frozenset(k.value for k in keyword.value.keys if isinstance(k, ast.Constant))
    return frozenset()


def raised() -> Iterator[Raised]:
    """Every coded refusal the hub's modules raise, with its detail and values."""
    for path in sorted(HUB.rglob("*.py")):
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
                continue
            where = f"{path.relative_to(HUB.parent)}:{call.lineno}"
            keywords = {k.arg: k.value for k in call.keywords}
            name = call.func.id
            if name in HELPERS and len(call.args) > 1:
                named = frozenset(k for k in keywords if k is not None)
                yield Raised(where, HELPERS[name], _constant(call.args[1]), named)
                continue
            if name in CODED and call.args:
                code = _constant(call.args[0])
            elif "code" in keywords and name.endswith("Error"):
                code = _constant(keywords["code"])
            else:
                continue
            if code is not None:
                detail = _constant(keywords.get("detail"))
                yield Raised(where, code, detail, _params(call))


def test_the_scan_finds_the_refusals_of_every_layer() -> None:
    codes = {r.code for r in raised()}
    # The queue, appointments, users, branding, sign-ups, pairing, store and the pages.
    for code in ("no_ticket", "slot_full", "last_admin", "accent_too_light"):
        assert code in codes
    for code in ("duplicate_eservice", "no_pairing_request", "unavailable", "password_needed"):
        assert code in codes
    assert ("invalid_hours", "order") in {(r.code, r.detail) for r in raised()}


def test_every_code_raised_has_a_text_that_its_values_fill() -> None:
    missing = sorted(({r.code for r in raised()} | COMPUTED) - set(REFUSALS))
    assert missing == []
    unfilled = []
    for found in raised():
        key = f"{found.code}.{found.detail}" if found.detail else found.code
        if key not in REFUSALS:
            unfilled.append((found.where, key, "no text"))
            continue
        needed = set(PLACEHOLDER.findall(english(key))) - set(DEFAULTS.get(key, {}))
        if found.params is not None and not needed <= found.params:
            unfilled.append((found.where, key, sorted(needed - found.params)))
    assert unfilled == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_refusal_text_is_translated_with_its_placeholders(lang: str) -> None:
    catalog = in_catalog(lang)
    wrong = []
    for key in REFUSALS:
        msgid = english(key)
        translated = catalog.get(msgid, "")
        if not translated or sorted(PLACEHOLDER.findall(translated)) != sorted(
            PLACEHOLDER.findall(msgid)
        ):
            wrong.append((key, translated))
    assert wrong == []


def test_an_unknown_code_or_unfit_values_show_a_text_not_the_english(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    sk = in_catalog("sk")
    general = sk[english("refused")]
    with app.test_request_context("/admin/", headers={"Cookie": "lang=sk"}):
        with caplog.at_level(logging.ERROR, "hub.web.refusals"):
            assert refusal_text(QueueError("no_such_code", "an English reason")) == general
        assert "no_such_code has no text" in caplog.text
        # A detail whose values are missing falls back to its code's plain text.
        counter = QueueError("unknown_service", "counter 9 serves unknown x", detail="counter")
        assert refusal_text(counter) == sk[english("unknown_service")]
        closure = QueueError("invalid_closure", "2000-01-01 has passed")
        assert refusal_text(closure) == sk[english("invalid_closure")] % {"days": 732}


# -- the pages -----------------------------------------------------------------------

SPEAKING = ["sk", "uk"]


def said(lang: str, key: str, **values: object) -> str:
    """The page's text of refusal ``key`` in ``lang``, with ``values`` put in."""
    return in_catalog(lang)[english(key)] % values


def shown(client: FlaskClient, url: str) -> str:
    return visible_text(client.get(url).get_data(as_text=True))


@pytest.fixture(params=SPEAKING)
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def speaking_admin(admin: FlaskClient, lang: str) -> FlaskClient:
    """The admin, with the language cookie of ``lang``."""
    admin.set_cookie("lang", lang)
    return admin


def test_a_duplicate_prefix_is_refused_in_the_page_language(
    speaking_admin: FlaskClient, lang: str, web_queue: QueueService
) -> None:
    form = {
        "prefix": "A",  # taxes has it
        "name_sk": "Odpad",
        "hours": "always",
        "service_time_min": "5",
        "csrf_token": csrf_token(speaking_admin, "/admin/services/waste"),
    }
    answer = speaking_admin.post("/admin/services/waste", data=form)
    assert answer.status_code == 200
    page = visible_text(answer.get_data(as_text=True))
    assert said(lang, "duplicate_prefix", prefix="A", service="taxes") in page
    assert "already used" not in page
    assert web_queue.engine.services["waste"].prefix == "B"


def test_bad_hours_and_a_past_closure_are_explained_in_the_page_language(
    speaking_admin: FlaskClient, lang: str, web_queue: QueueService
) -> None:
    form = {
        "prefix": "B",
        "name_sk": "Odpad",
        "hours": "Mon 08:00-12:00; Sun 12:00-08:00",
        "service_time_min": "5",
        "csrf_token": csrf_token(speaking_admin, "/admin/services/waste"),
    }
    answer = speaking_admin.post("/admin/services/waste", data=form)
    page = visible_text(answer.get_data(as_text=True))
    assert said(lang, "invalid_hours.order", part="12:00-08:00") in page
    assert "ends before it starts" not in page
    token = csrf_token(speaking_admin, "/admin/closures")
    answer = speaking_admin.post("/admin/closures", data={"day": "2000-01-01", "csrf_token": token})
    assert answer.status_code == 400
    page = visible_text(answer.get_data(as_text=True))
    assert said(lang, "invalid_closure", days=732) in page
    assert "has passed" not in page
    assert web_queue.closures() == []


def test_a_bad_seat_table_and_the_last_admin_are_refused_in_the_page_language(
    speaking_admin: FlaskClient, lang: str
) -> None:
    token = csrf_token(speaking_admin, "/admin/booking/waste")
    rules = {"slot_min": "20", "seats": "2", "horizon_days": "10", "cancel_before_min": "0"}
    answer = speaking_admin.post(
        "/admin/booking/waste",
        data={**rules, "hold_min": "5", "seats_by_hour": "Mon 12", "csrf_token": token},
    )
    page = visible_text(answer.get_data(as_text=True))
    assert said(lang, "invalid.seat_table", part="Mon 12") in page
    assert "is not like" not in page
    token = csrf_token(speaking_admin, "/admin/users")
    answer = speaking_admin.post(
        "/admin/users",
        data={"username": "admin", "role": "clerk", "active": "y", "csrf_token": token},
    )
    assert answer.status_code == 200
    page = visible_text(answer.get_data(as_text=True))
    assert said(lang, "last_admin", name="admin") in page
    assert "only active admin" not in page


@pytest.fixture
def speaking_clerk(app: Flask, web_queue: QueueService, lang: str) -> FlaskClient:
    """A clerk at counter 1 (with the second-Next guard), with the language cookie."""
    client = app.test_client()
    Users(web_queue.store).add("jana", ADMIN_PASSWORD, "clerk")
    token = csrf_token(client, "/admin/login")
    data = {"username": "jana", "password": ADMIN_PASSWORD, "csrf_token": token}
    assert client.post("/admin/login", data=data).status_code == 302
    token = csrf_token(client, "/clerk/counter")
    answer = client.post("/clerk/counter", data={"counter": "1", "csrf_token": token})
    assert answer.status_code == 302
    client.set_cookie("lang", lang)
    return client


def press(client: FlaskClient, action: str, seen: str = "") -> str:
    """Press a button of counter 1 having seen ticket ``seen``; the panel after it."""
    token = csrf_token(client, "/clerk/")
    data = {"counter": "1", "seen": seen, "action": action, "csrf_token": token}
    assert client.post("/clerk/act", data=data).status_code == 303
    return shown(client, "/clerk/")


def test_the_clerk_panel_refuses_in_the_page_language(
    speaking_clerk: FlaskClient, lang: str, web_queue: QueueService
) -> None:
    page = press(speaking_clerk, "recall")
    assert said(lang, "no_ticket") in page
    assert "has no ticket" not in page
    web_queue.issue("taxes")
    web_queue.issue("taxes")
    press(speaking_clerk, "next")
    called = web_queue.engine.counters["1"].current
    assert called is not None
    page = press(speaking_clerk, "next", seen=called)  # within the second-Next window
    assert said(lang, "next_guard", number="A001") in page
    assert "called less than" not in page
    page = press(speaking_clerk, "done", seen="")  # a page another device overtook
    assert said(lang, "stale_page") in page
    assert web_queue.engine.counters["1"].current == called


def test_hostile_values_in_a_refusal_are_shown_as_text(
    speaking_admin: FlaskClient, lang: str, web_queue: QueueService
) -> None:
    before = web_queue.engine.services["waste"]
    markup = "<script>alert(1)</script>"
    form = {
        "prefix": "B",
        "name_sk": "Odpad",
        "hours": f"{markup} 08:00-12:00",
        "service_time_min": "5",
        "csrf_token": csrf_token(speaking_admin, "/admin/services/waste"),
    }
    answer = speaking_admin.post("/admin/services/waste", data=form)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert markup not in html
    days = "Mon, Tue, Wed, Thu, Fri, Sat, Sun"
    assert said(lang, "invalid_hours.day", part=markup, days=days) in visible_text(html)
    token = csrf_token(speaking_admin, "/admin/users")
    answer = speaking_admin.post(
        "/admin/users",
        data={
            "username": f"a{markup}",
            "role": "clerk",
            "password": ADMIN_PASSWORD,
            "csrf_token": token,
        },
    )
    html = answer.get_data(as_text=True)
    assert markup not in html
    assert said(lang, "invalid_name", name=f"a{markup}") in visible_text(html)
    assert web_queue.engine.services["waste"] == before
