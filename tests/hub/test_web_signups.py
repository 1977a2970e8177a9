"""In-person e-service sign-up: desks, the clerk's checklist on Done, the monthly counts."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_web_clerk import act, sign_in
from web_helpers import csrf_token

from common.counter_settings import CounterSettings
from common.settings import Settings
from hub.app import web_app
from hub.service import QueueService
from hub.signups import MAX_ESERVICES, SignUpError, SignUpSetup
from hub.store import metadata
from hub.web.context import hub

tickets = metadata.tables["tickets"]
signups_table = metadata.tables["eservice_signups"]
ESERVICES = ("Slovensko.sk (eID)", "iMesto: dane a poplatky", "Elektronická schránka")


@pytest.fixture
def desk(web_settings: Settings, web_queue: QueueService) -> Flask:
    """The web app where taxes is a registration desk listing :data:`ESERVICES`.

    Without the second-Next window, so that two Nexts in a row go through.
    """
    settings = web_settings.model_copy(update={"counter": CounterSettings(next_guard_s=0)})
    app = web_app(settings, web_queue, config={"TESTING": True})
    hub(app).signups.save(SignUpSetup(desks=("taxes",), eservices=ESERVICES))
    return app


@pytest.fixture
def desk_clerk(desk: Flask, web_queue: QueueService) -> FlaskClient:
    """A clerk at counter 1 (taxes and waste), pages in English."""
    client = desk.test_client()
    sign_in(client, web_queue)
    token = csrf_token(client, "/clerk/counter")
    client.post("/clerk/counter", data={"counter": "1", "csrf_token": token})
    client.get("/clerk/?lang=en")
    return client


def done_with(client: FlaskClient, names: list[str], action: str = "done") -> int:
    """Press Done (or ``action``) on the panel with ``names`` ticked; the answer's status."""
    page = client.get("/clerk/").get_data(as_text=True)
    seen = re.search(r'name="seen" value="([^"]*)"', page)
    assert seen is not None
    data = {
        "counter": "1",
        "seen": seen.group(1),
        "action": action,
        "eservices": names,
        "csrf_token": csrf_token(client, "/clerk/"),
    }
    return client.post("/clerk/act", data=data).status_code


def month_counts(app: Flask, queue: QueueService) -> list[tuple[str, str, int]]:
    day = queue.today()
    return [(r.month, r.eservice, r.count) for r in hub(app).signups.per_month(day, day)]


def test_the_admin_marks_a_desk_and_lists_the_eservices(
    admin: FlaskClient, app: Flask, web_queue: QueueService
) -> None:
    admin.set_cookie("lang", "en")  # the English wording
    page = admin.get("/admin/services/taxes").get_data(as_text=True)
    assert "E-service registration desk" in page
    form = {
        "csrf_token": csrf_token(admin, "/admin/services/taxes"),
        "code": "taxes",
        "prefix": "A",
        "name_sk": "Dane",
        "hours": "always",
        "service_time_min": "5",
        "open": "y",
        "desk": "y",
    }
    assert admin.post("/admin/services/taxes", data=form).status_code == 302
    assert hub(app).signups.is_desk("taxes")
    assert '<input checked id="desk" name="desk"' in admin.get("/admin/services/taxes").get_data(
        as_text=True
    )
    token = csrf_token(admin, "/admin/signups")
    listed = "\n".join(ESERVICES) + "\n\n"
    assert (
        admin.post("/admin/signups", data={"eservices": listed, "csrf_token": token}).status_code
        == 302
    )
    assert hub(app).signups.setup() == SignUpSetup(desks=("taxes",), eservices=ESERVICES)
    del form["desk"]
    admin.post("/admin/services/taxes", data=form)
    assert not hub(app).signups.is_desk("taxes")


@pytest.mark.parametrize(
    "listed",
    [
        "iMesto\niMesto",
        "x" * 81,
        "\n".join(f"e-service {n}" for n in range(MAX_ESERVICES + 1)),
    ],
)
def test_a_bad_list_of_eservices_is_refused(admin: FlaskClient, app: Flask, listed: str) -> None:
    token = csrf_token(admin, "/admin/signups")
    answer = admin.post("/admin/signups", data={"eservices": listed, "csrf_token": token})
    assert answer.status_code == 200
    assert 'class="error"' in answer.get_data(as_text=True)
    assert hub(app).signups.setup() == SignUpSetup()


def test_only_admins_set_up_the_desks(client: FlaskClient, web_queue: QueueService) -> None:
    sign_in(client, web_queue)
    assert client.get("/admin/signups").status_code == 403


def test_the_clerk_records_signups_on_done(
    desk_clerk: FlaskClient, desk: Flask, web_queue: QueueService
) -> None:
    web_queue.issue("taxes")
    page = act(desk_clerk, "next")
    assert "data-eservices" in page
    for name in ESERVICES:
        assert f'name="eservices" value="{name}"' in page
    assert done_with(desk_clerk, [ESERVICES[0], ESERVICES[2], ESERVICES[0]]) == 303
    assert "A001 is done." in desk_clerk.get("/clerk/?lang=en").get_data(as_text=True)
    month = f"{web_queue.today():%Y-%m}"
    assert month_counts(desk, web_queue) == [(month, ESERVICES[2], 1), (month, ESERVICES[0], 1)]
    # Another desk ticket without ticks records nothing; a ticket of another service
    # shows no checklist and records nothing either.
    web_queue.issue("taxes")
    act(desk_clerk, "next")
    act(desk_clerk, "done")
    web_queue.issue("waste")
    page = act(desk_clerk, "next")
    assert "data-eservices" not in page
    act(desk_clerk, "done", eservices=ESERVICES[1])
    assert len(month_counts(desk, web_queue)) == 2
    # Next finishes the current citizen too: the ticks are recorded for that ticket.
    web_queue.issue("taxes")
    web_queue.issue("taxes")
    act(desk_clerk, "next")
    assert done_with(desk_clerk, [ESERVICES[1]], action="next") == 303
    assert "Called A004." in desk_clerk.get("/clerk/?lang=en").get_data(as_text=True)
    assert (month, ESERVICES[1], 1) in month_counts(desk, web_queue)
    day = web_queue.today()
    with web_queue.store.db.connect() as conn:
        signed = conn.execute(
            select(tickets.c.number)
            .join(signups_table, signups_table.c.ticket_id == tickets.c.id)
            .where(signups_table.c.eservice == ESERVICES[1], tickets.c.business_day == day)
        ).scalars()
        assert list(signed) == ["A003"]


def test_an_unlisted_eservice_is_refused_before_done(
    desk_clerk: FlaskClient, desk: Flask, web_queue: QueueService
) -> None:
    web_queue.issue("taxes")
    act(desk_clerk, "next")
    page = act(desk_clerk, "done", eservices="<b>forged</b>")
    assert "Tick only the e-services listed" in page
    assert re.search(r'data-ticket="A001"', page)  # not finished
    assert month_counts(desk, web_queue) == []
    assert done_with(desk_clerk, [ESERVICES[0]] * (MAX_ESERVICES + 1)) == 400
    assert month_counts(desk, web_queue) == []


def test_signups_per_month_in_the_statistics_and_csv(
    admin: FlaskClient, app: Flask, web_queue: QueueService
) -> None:
    book = hub(app).signups
    book.save(SignUpSetup(desks=("taxes",), eservices=ESERVICES))
    for names in ([ESERVICES[0]], [ESERVICES[0], ESERVICES[1]]):
        ticket = web_queue.issue("taxes").ticket
        web_queue.counter_action("1", "next")
        web_queue.counter_action("1", "done")
        book.record(ticket.id, names, clerk="web:jana", at=web_queue.clock())
    month = f"{web_queue.today():%Y-%m}"
    page = admin.get("/admin/statistics").get_data(as_text=True)
    assert f'<tr><td>{month}</td><td>{ESERVICES[0]}</td><td class="num">2</td></tr>' in page
    body = admin.get("/admin/statistics/signups.csv").get_data(as_text=True)
    assert body.splitlines() == [
        "month,eservice,signups",
        f"{month},{ESERVICES[0]},2",
        f"{month},{ESERVICES[1]},1",
    ]
    with pytest.raises(SignUpError):
        book.record(ticket.id, ["unlisted"], clerk=None, at=web_queue.clock())
    assert book.per_month(date(2000, 1, 1), date(2000, 12, 31)) == []
