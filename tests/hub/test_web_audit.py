"""The admins' audit: every kind of change on the admin pages is written, listed and exported."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import csrf_token, sign_in_clerk

from hub.audit import AuditEntry, AuditFilter
from hub.web.context import hub


def post(admin: FlaskClient, url: str, page: str | None = None, **data: object) -> int:
    """Submit a form of the admin pages with the page's CSRF token; the status."""
    token = csrf_token(admin, page or url)
    return admin.post(url, data={**data, "csrf_token": token}).status_code


def entries(app: Flask, **wanted: str) -> list[AuditEntry]:
    found, _ = hub(app).audit.find(AuditFilter(**wanted))  # type: ignore[arg-type]
    return found


def test_every_kind_of_admin_change_is_audited(admin: FlaskClient, app: Flask) -> None:
    service = {
        "code": "passports",
        "prefix": "P",
        "name_sk": "Pasy",
        "hours": "always",
        "service_time_min": "5",
        "open": "y",
    }
    assert post(admin, "/admin/services/new", **service) == 302
    assert post(admin, "/admin/services/passports", **{**service, "daily_limit": "40"}) == 302
    assert post(admin, "/admin/counters/new", id="9", name="Okienko 9", services="taxes") == 302
    assert post(admin, "/admin/counters/9", id="9", name="Okienko 9", services="passports") == 302
    day = (hub(app).queue.today() + timedelta(days=3)).isoformat()
    assert post(admin, "/admin/closures", day=day, reason="Školenie") == 302
    [closure] = hub(app).queue.closures()
    assert post(admin, f"/admin/closures/{closure.id}/remove", "/admin/closures") == 302
    rules = {
        "enabled": "y",
        "slot_min": "20",
        "seats": "2",
        "horizon_days": "30",
        "cancel_before_min": "60",
        "hold_min": "10",
    }
    assert post(admin, "/admin/booking/taxes", **rules) == 302
    tomorrow = hub(app).queue.today() + timedelta(days=1)
    url = f"/admin/appointments?service=taxes&date={tomorrow.isoformat()}"
    starts = re.findall(r'<option value="([^"]+T[^"]+)"', admin.get(url).get_data(as_text=True))
    assert post(admin, url, slot=starts[0], name="Ján Telefón") == 302
    [booked] = hub(app).appointments.day_bookings("taxes", tomorrow)
    assert post(admin, f"/admin/appointments/{booked.code}/cancel", url) == 302
    user = {"username": "jana", "role": "clerk", "active": "y", "counters": ["1"]}
    assert post(admin, "/admin/users", password="a-secret-password", **user) == 302
    assert post(admin, "/admin/users", password="another-secret-1", **user) == 302
    assert (
        post(admin, "/admin/tokens", name="registry", statistics="y") == 200
    )  # the token, shown once
    assert post(admin, "/admin/tokens/registry/revoke", "/admin/tokens") == 302
    branding = {"office_name": "Mesto Nové", "accent_color": "#112233", "languages": "sk, en"}
    assert post(admin, "/admin/branding", **branding) == 302

    log = [(e.kind, e.object_id, e.action) for e in reversed(entries(app))]
    assert log == [
        ("service", "passports", "create"),
        ("service", "passports", "update"),
        ("counter", "9", "create"),
        ("counter", "9", "update"),
        ("closure", closure.id, "create"),
        ("closure", closure.id, "delete"),
        ("booking_rules", "taxes", "update"),
        ("appointment", booked.code, "book"),
        ("appointment", booked.code, "cancel"),
        ("user", "jana", "create"),
        ("user", "jana", "update"),
        ("token", "registry", "issue"),
        ("token", "registry", "revoke"),
        ("branding", "site", "update"),
    ]
    every = entries(app)
    assert {e.actor for e in every} == {"admin:admin"}
    summaries = {(e.kind, e.action): e.summary for e in every}
    assert summaries["service", "update"] == "daily_limit: – → 40"
    assert summaries["counter", "update"] == "services: taxes → passports"
    assert "slot_min: 15 → 20" in summaries["booking_rules", "update"]
    assert "Školenie" in summaries["closure", "create"]
    assert summaries["user", "update"] == "password: changed"
    assert "counters: 1" in summaries["user", "create"]
    assert "office_name: " in summaries["branding", "update"]
    assert summaries["token", "issue"] == "scopes: statistics"
    text = " ".join(e.summary for e in every)
    assert "secret" not in text  # never a password
    assert "Ján" not in text  # nor a caller's name


@pytest.fixture
def audited(app: Flask) -> Flask:
    """An audit with a few changes by two admins."""
    audit = hub(app).audit
    audit.record("admin:eva", "service", "taxes", "update", "daily_limit: – → 40")
    audit.record("admin:eva", "counter", "1", "update", "name: Okienko 1 → Pokladňa")
    audit.record("admin:ivan", "user", "jana", "create", "role: clerk")
    for index in range(60):
        audit.record("admin:ivan", "closure", f"c{index}", "create", "when: 2030-01-01")
    return app


def test_the_audit_page_filters_and_pages(admin: FlaskClient, audited: Flask) -> None:
    slovak = admin.get("/admin/audit").get_data(as_text=True)  # sk, the default
    assert "Zmien: 63" in slovak
    assert "Strana 1 z 2" in slovak
    admin.set_cookie("lang", "en")
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "Page 1 of 2" in page
    assert "63 changes" in page
    assert page.count("<tr><td>") == 50
    assert 'rel="next"' in page
    second = admin.get("/admin/audit?page=2").get_data(as_text=True)
    assert second.count("<tr><td>") == 13
    assert "Pokladňa" in second
    by_kind = admin.get("/admin/audit?kind=counter").get_data(as_text=True)
    assert "1 changes" in by_kind
    assert "Pokladňa" in by_kind
    by_actor = admin.get("/admin/audit?actor=admin:eva").get_data(as_text=True)
    assert "2 changes" in by_actor
    by_text = admin.get("/admin/audit?q=jana").get_data(as_text=True)
    assert "1 changes" in by_text
    assert "role: clerk" in by_text
    assert "0 changes" in admin.get("/admin/audit?q=%25_").get_data(as_text=True)  # no wildcards
    today = hub(audited).queue.today()
    week = f"from={(today - timedelta(days=7)).isoformat()}&to={today.isoformat()}"
    assert "63 changes" in admin.get(f"/admin/audit?{week}").get_data(as_text=True)
    ahead = (today + timedelta(days=1)).isoformat()
    assert "0 changes" in admin.get(f"/admin/audit?from={ahead}").get_data(as_text=True)
    past = date(2020, 1, 1).isoformat()
    assert "0 changes" in admin.get(f"/admin/audit?to={past}").get_data(as_text=True)


def test_the_audit_downloads_as_csv(admin: FlaskClient, audited: Flask) -> None:
    hub(audited).audit.record("admin:eva", "branding", "site", "update", "=HYPERLINK(1)")
    answer = admin.get("/admin/audit.csv?actor=admin:eva")
    assert answer.status_code == 200
    assert answer.content_type == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["at", "actor", "kind", "object_id", "action", "summary"]
    assert [(r[1], r[2], r[5]) for r in rows[1:]] == [
        ("admin:eva", "branding", "'=HYPERLINK(1)"),  # a spreadsheet shows it as text
        ("admin:eva", "counter", "name: Okienko 1 → Pokladňa"),
        ("admin:eva", "service", "daily_limit: – → 40"),
    ]
    every = admin.get("/admin/audit.csv").get_data(as_text=True).splitlines()
    assert len(every) == 1 + 64  # not paged


@pytest.mark.parametrize(
    "query",
    ["kind=everything", "from=yesterday", "to=2026-13-01", "q=" + "x" * 101, "page=0", "page=-3"],
)
def test_bad_audit_filters_are_400(admin: FlaskClient, query: str) -> None:
    assert admin.get(f"/admin/audit?{query}").status_code == 400


def test_clerks_may_not_see_the_audit(app: Flask) -> None:
    client = app.test_client()
    sign_in_clerk(client, hub(app).queue.store)
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/audit.csv").status_code == 403
    assert app.test_client().get("/admin/audit").status_code == 302  # to sign in
