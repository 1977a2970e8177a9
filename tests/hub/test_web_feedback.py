"""Citizens rate their finished visits on the portal; ratings reach the statistics."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import csrf_token, sign_in_clerk

from hub.feedback import Feedback, FeedbackError
from hub.service import QueueService
from hub.web.context import hub


def finished(queue: QueueService, *, actor: str = "web:jana") -> str:
    """A taxes ticket called and finished at counter 1 by ``actor``; its id."""
    ticket = queue.issue("taxes").ticket
    queue.counter_action("1", "next", actor=actor)
    queue.counter_action("1", "done", actor=actor)
    return ticket.id


def rate(client: FlaskClient, ticket_id: str, **fields: str) -> tuple[int, str]:
    """Post the rating form of ``ticket_id`` with the session's CSRF token; status and page.

    The token comes from another form of the portal: the rating form is not shown to a
    ticket that cannot be rated, and a replay must still be refused.
    """
    token = csrf_token(client, "/eservice")
    answer = client.post(f"/t/{ticket_id}/rate", data={"csrf_token": token, **fields})
    return answer.status_code, answer.get_data(as_text=True)


def test_a_finished_ticket_asks_for_a_rating(client: FlaskClient, web_queue: QueueService) -> None:
    ticket_id = finished(web_queue)
    page = client.get(f"/t/{ticket_id}?lang=en").get_data(as_text=True)
    assert "Rate your visit from 1 to 5" in page
    for n in range(1, 6):
        assert f'href="/t/{ticket_id}/rate?rating={n}"' in page
    form = client.get(f"/t/{ticket_id}/rate?rating=4&lang=en").get_data(as_text=True)
    assert re.search(r'value="4"[^>]*checked|checked[^>]*value="4"', form)
    waiting = web_queue.issue("taxes").ticket
    assert "Rate your visit" not in client.get(f"/t/{waiting.id}").get_data(as_text=True)


def test_a_rating_is_stored_once_with_who_served(
    client: FlaskClient, web_queue: QueueService
) -> None:
    ticket_id = finished(web_queue)
    client.get("/?lang=en")
    status, page = rate(client, ticket_id, rating="4", comment="  Quick and kind.  ")
    assert status == 200
    assert "Thank you for your rating." in page
    assert "A001" in page
    day = web_queue.today()
    [stored] = hub(client.application).feedback.ratings(day, day)
    assert (stored.rating, stored.comment, stored.source) == (4, "Quick and kind.", "portal")
    assert (stored.service, stored.counter, stored.clerk) == ("taxes", "1", "web:jana")
    # A replay, or a second rating, is refused clearly and changes nothing.
    status, page = rate(client, ticket_id, rating="1")
    assert status == 409
    assert "This visit has already been rated." in page
    assert client.get(f"/t/{ticket_id}/rate").status_code == 409
    assert [r.rating for r in hub(client.application).feedback.ratings(day, day)] == [4]


@pytest.mark.parametrize(
    "fields",
    [
        {"rating": "0"},
        {"rating": "6"},
        {"rating": "4.5"},
        {"rating": "x"},
        {"comment": "no rating"},
        {"rating": "5", "comment": "x" * 501},
    ],
)
def test_hostile_ratings_are_refused(
    client: FlaskClient, web_queue: QueueService, fields: dict[str, str]
) -> None:
    ticket_id = finished(web_queue)
    client.get("/?lang=en")
    status, page = rate(client, ticket_id, **fields)
    assert status == 400
    assert "Choose a rating from 1 to 5" in page
    day = web_queue.today()
    assert hub(client.application).feedback.ratings(day, day) == []


def test_a_rating_without_the_csrf_token_is_refused(
    client: FlaskClient, web_queue: QueueService
) -> None:
    ticket_id = finished(web_queue)
    answer = client.post(f"/t/{ticket_id}/rate", data={"rating": "1"})
    assert answer.status_code == 400
    day = web_queue.today()
    assert hub(client.application).feedback.ratings(day, day) == []


def test_only_finished_visits_can_be_rated(client: FlaskClient, web_queue: QueueService) -> None:
    client.get("/?lang=en")
    no_show = web_queue.issue("waste").ticket
    web_queue.counter_action("1", "next")
    web_queue.counter_action("1", "no_show")
    assert client.get(f"/t/{no_show.id}/rate").status_code == 409
    waiting = web_queue.issue("taxes").ticket
    status, page = rate(client, waiting.id, rating="5")
    assert status == 409
    assert "once it has ended" in page
    assert client.get(f"/t/{uuid.uuid4().hex}/rate").status_code == 404
    assert client.get(f"/t/{'A' * 32}/rate").status_code == 404
    assert rate(client, "not-a-ticket", rating="5")[0] == 404
    day = web_queue.today()
    assert hub(client.application).feedback.ratings(day, day) == []


def test_the_window_to_rate_closes(client: FlaskClient, web_queue: QueueService) -> None:
    ticket_id = finished(web_queue)
    client.get("/?lang=en")
    current = hub(client.application)
    later = web_queue.clock() + timedelta(hours=current.settings.web.rating_window_h, minutes=1)
    current.feedback = Feedback(
        web_queue.store, window=current.feedback.window, clock=lambda: later
    )
    answer = client.get(f"/t/{ticket_id}/rate")
    assert answer.status_code == 410
    assert "The time to rate this visit has passed." in answer.get_data(as_text=True)
    with pytest.raises(FeedbackError) as refused:
        current.feedback.rate(ticket_id, 5, source="portal")
    assert refused.value.code == "too_late"
    for bad in (True, 0, 6):
        with pytest.raises(FeedbackError) as refused:
            current.feedback.rate(ticket_id, bad, source="portal")
        assert refused.value.code == "invalid"


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("sk", "Ohodnoťte svoju návštevu"),
        ("cs", "Ohodnoťte svou návštěvu"),
        ("uk", "Оцініть свій візит"),
        ("en", "Rate your visit"),
    ],
)
def test_the_rating_form_speaks_the_citizens_language(
    client: FlaskClient, web_queue: QueueService, lang: str, text: str
) -> None:
    ticket_id = finished(web_queue)
    assert text in client.get(f"/t/{ticket_id}?lang={lang}").get_data(as_text=True)
    assert text in client.get(f"/t/{ticket_id}/rate?lang={lang}").get_data(as_text=True)


def test_ratings_appear_in_the_statistics_and_their_csv(
    admin: FlaskClient, app: Flask, web_queue: QueueService
) -> None:
    admin.set_cookie("lang", "en")  # the English wording
    book = hub(app).feedback
    book.rate(finished(web_queue), 5, "=HYPERLINK(evil)", source="portal")
    book.rate(
        finished(web_queue, actor="web:peter"), 2, "<script>alert(1)</script>", source="portal"
    )
    book.rate(finished(web_queue), 3, source="counter")
    page = admin.get("/admin/statistics").get_data(as_text=True)
    assert "3 visits rated · mean 3.3 of 5" in page
    assert re.search(r"<td>web:jana</td><td class=\"num\">2</td><td class=\"num\">4.0</td>", page)
    assert re.search(r"<td>web:peter</td><td class=\"num\">1</td><td class=\"num\">2.0</td>", page)
    assert re.search(r"<td>Okienko 1</td><td class=\"num\">3</td>", page)
    body = admin.get("/admin/statistics/ratings.csv").get_data(as_text=True)
    lines = body.splitlines()
    assert lines[0] == "business_day,number,service,counter,clerk,rating,comment,source,at"
    assert len(lines) == 4
    assert "'=HYPERLINK(evil)" in body
    comments = admin.get("/admin/feedback").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in comments
    assert "<script>alert(1)" not in comments
    assert "'=HYPERLINK" not in comments
    assert "=HYPERLINK(evil)" in comments


def test_only_admins_read_the_comments(client: FlaskClient, web_queue: QueueService) -> None:
    sign_in_clerk(client, web_queue.store)
    assert client.get("/admin/feedback").status_code == 403
    assert client.get("/admin/statistics/ratings.csv").status_code == 200
