"""Priority tickets in the statistics: counted per reason (a kiosk's and a clerk's alike),
on the admin page, in the CSV and through the API."""

from __future__ import annotations

import csv
import io

from flask.testing import FlaskClient

from hub.model import Priority
from hub.service import QueueService
from hub.users import ApiTokens


def a_day(queue: QueueService) -> None:
    """Two pregnancies and an age (given by a clerk) among five tickets; two are served."""
    queue.issue("taxes", priority=Priority.PREGNANCY, actor="kiosk:k1")
    queue.issue("taxes")
    later = queue.issue("waste").ticket
    queue.issue("waste", priority=Priority.PREGNANCY, actor="kiosk:k1")
    queue.issue("parking")
    queue.prioritise(later.id, Priority.AGE, actor="web:jana")
    for _ in range(2):
        queue.counter_action("1", "next")
    queue.counter_action("1", "done")


def test_priority_tickets_are_counted_per_reason(web_queue: QueueService) -> None:
    a_day(web_queue)
    day = web_queue.day
    figures = web_queue.statistics(day, day, target_wait_s=900)
    assert figures.priority_tickets == 3
    assert [(g.key, g.tickets) for g in figures.per_priority] == [("pregnancy", 2), ("age", 1)]
    # The two visits went to priority tickets, before the others.
    assert sum(g.served for g in figures.per_priority) == figures.total.served == 2
    assert figures.total.tickets == 5


def test_the_admin_page_the_csv_and_the_api_show_them(
    admin: FlaskClient, client: FlaskClient, web_queue: QueueService
) -> None:
    a_day(web_queue)
    day = web_queue.day.isoformat()
    admin.set_cookie("lang", "en")  # the English wording
    page = admin.get(f"/admin/statistics?from={day}&to={day}").get_data(as_text=True)
    assert "<p data-priority-tickets>3 tickets had priority" in page
    assert '<td>Pregnancy</td><td class="num">2</td>' in page
    assert '<td>Older age</td><td class="num">1</td>' in page
    sheet = admin.get(f"/admin/statistics.csv?from={day}&to={day}").get_data(as_text=True)
    table = list(csv.DictReader(io.StringIO(sheet)))
    assert sorted(row["priority"] for row in table) == ["", "", "age", "pregnancy", "pregnancy"]
    token = ApiTokens(web_queue.store).issue("bi", ("statistics",))
    answer = client.get(
        f"/api/v1/statistics?from={day}&to={day}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["priority_tickets"] == 3
    assert [(g["key"], g["tickets"]) for g in body["per_priority"]] == [
        ("pregnancy", 2),
        ("age", 1),
    ]


def test_a_day_without_priority_shows_none(admin: FlaskClient, web_queue: QueueService) -> None:
    web_queue.issue("taxes")
    day = web_queue.day.isoformat()
    admin.set_cookie("lang", "en")  # the English wording
    page = admin.get(f"/admin/statistics?from={day}&to={day}").get_data(as_text=True)
    assert "<p data-priority-tickets>0 tickets had priority" in page
    assert "<th>Reason</th>" not in page
