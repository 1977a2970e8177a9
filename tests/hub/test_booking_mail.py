"""The citizen's booking e-mail: a real SMTP server (aiosmtpd) receives what the hub sends."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from mail_helpers import Inbox, smtp_server
from web_helpers import csrf_token

from common.settings import MailSettings, Settings
from hub.app import open_queue, seed_demo, web_app
from hub.appointments import BookingRules
from hub.mail import Mailer
from hub.service import QueueService
from hub.web import hub

RULES = BookingRules("taxes", enabled=True, slot_min=30, seats=1, cancel_before_min=60)

EXPECTED = {
    "sk": ("Váš termín", "Termín presunutý", "Termín zrušený", "Miestne dane", "Kód rezervácie"),
    "cs": ("Váš termín", "Termín přesunut", "Termín zrušen", "Místní daně", "Kód rezervace"),
    "uk": ("Ваш запис", "Запис перенесено", "Запис скасовано", "Місцеві податки", "Код запису"),
    "en": ("Your appointment", "Appointment moved", "Appointment cancelled", "Local taxes",
           "Booking code"),
}  # fmt: skip
"""Per language: the subjects (booked, moved, cancelled), the service's name, the code's label."""


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with smtp_server() as running:
        yield running


def mail_app(web_settings: Settings, mail: MailSettings) -> Iterator[tuple[Flask, Mailer]]:
    settings = web_settings.model_copy(update={"mail": mail})
    queue = open_queue(settings)
    seed_demo(queue)
    mailer = Mailer(mail, backoff_s=(600.0,)).start()
    app = web_app(settings, queue, mailer=mailer, config={"TESTING": True})
    hub(app).appointments.save_rules(RULES)
    try:
        yield app, mailer
    finally:
        mailer.stop()
        queue.store.close()


@pytest.fixture
def mailing(web_settings: Settings, inbox: Inbox) -> Iterator[tuple[Flask, Mailer]]:
    """The web app of a hub whose ``[mail]`` sends to ``inbox``, and its mailer."""
    yield from mail_app(web_settings, inbox.settings())


def slots(client: FlaskClient, day: date) -> list[str]:
    answer = client.get(f"/api/v1/services/taxes/slots?date={day.isoformat()}")
    assert answer.status_code == 200, answer.get_json()
    return [slot["starts_at"] for slot in answer.get_json()["slots"]]


def local(queue: QueueService, at: str | datetime) -> str:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return f"{moment.astimezone(queue.timezone):%d.%m.%Y %H:%M}"


def text_of(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def calendar_of(mail: EmailMessage) -> Calendar:
    files = [part for part in mail.iter_attachments() if part.get_content_type() == "text/calendar"]
    assert len(files) == 1, [part.get_content_type() for part in mail.iter_attachments()]
    return Calendar.from_ical(files[0].get_payload(decode=True))


@pytest.mark.parametrize("lang", ["sk", "cs", "uk", "en"])
def test_booked_moved_and_cancelled_are_mailed_in_the_citizens_language(
    mailing: tuple[Flask, Mailer], inbox: Inbox, lang: str
) -> None:
    app, _mailer = mailing
    client = app.test_client()
    queue = hub(app).queue
    day = queue.today() + timedelta(days=1)
    starts = slots(client, day)
    booked, moved, cancelled, service, code_label = EXPECTED[lang]

    answer = client.post(
        "/api/v1/appointments",
        json={
            "service": "taxes",
            "starts_at": starts[3],
            "name": "Anna N.",
            "email": "Anna@Example.org",
            "lang": lang,
        },
    )
    assert answer.status_code == 201, answer.get_json()
    code = answer.get_json()["code"]
    mail = inbox.next()
    assert mail["X-Envelope-To"] == "anna@example.org"
    assert mail["Subject"] == f"{booked}: {service}, {local(queue, starts[3])}"
    assert mail["From"] == "poradovnik@office.example"
    body = text_of(mail)
    assert f"{code_label}: {code}" in body
    assert "Anna N." in body
    assert f"http://localhost/appointment/{code}" in body  # to cancel or move it
    event = next(iter(calendar_of(mail).walk("VEVENT")))  # the portal's calendar file
    assert event.decoded("dtstart") == datetime.fromisoformat(starts[3])
    assert code in str(event.get("description"))
    assert code_label in str(event.get("description"))
    assert client.get(f"/appointment/{code}.ics?lang={lang}").data == calendar_bytes(mail)

    token = csrf_token(client, f"/appointment/{code}/move?date={day.isoformat()}")
    answer = client.post(f"/appointment/{code}/move", data={"slot": starts[6], "csrf_token": token})
    assert answer.status_code == 303
    mail = inbox.next()
    assert mail["Subject"] == f"{moved}: {service}, {local(queue, starts[6])}"
    event = next(iter(calendar_of(mail).walk("VEVENT")))
    assert event.decoded("dtstart") == datetime.fromisoformat(starts[6])

    assert client.delete(f"/api/v1/appointments/{code}").status_code == 200
    mail = inbox.next()
    assert mail["Subject"] == f"{cancelled}: {service}, {local(queue, starts[6])}"
    assert f"{code_label}: {code}" in text_of(mail)
    assert not list(mail.iter_attachments())  # no calendar file, no link for what is gone
    assert "/appointment/" not in text_of(mail)


def calendar_bytes(mail: EmailMessage) -> bytes:
    part = next(mail.iter_attachments())
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload


def test_no_address_no_mail_and_a_hold_is_not_mailed(
    mailing: tuple[Flask, Mailer], inbox: Inbox
) -> None:
    app, mailer = mailing
    client = app.test_client()
    book = hub(app).appointments
    day = book.queue.today() + timedelta(days=1)
    starts = slots(client, day)
    without = {"service": "taxes", "starts_at": starts[1], "name": "Bob"}
    assert client.post("/api/v1/appointments", json=without).status_code == 201
    # The portal holds a slot first: nothing is mailed until it is confirmed, once.
    token = csrf_token(client, f"/book/taxes?date={day.isoformat()}")
    held = client.post("/book/taxes?lang=cs", data={"slot": starts[2], "csrf_token": token})
    assert held.status_code == 303
    code = re.search(r"/appointment/(\d{8})", held.headers["Location"])
    assert code is not None
    form = {"name": "Cyril", "email": "cyril@example.org"}
    for _twice in range(2):
        token = csrf_token(client, f"/appointment/{code[1]}")
        answer = client.post(f"/appointment/{code[1]}/confirm", data=form | {"csrf_token": token})
        assert answer.status_code == 303
    mail = inbox.next()  # the first message: Bob's booking sent none
    assert mail["X-Envelope-To"] == "cyril@example.org"
    assert mail["Subject"].startswith("Váš termín: Místní daně")
    marker = EmailMessage()
    marker["Subject"], marker["To"] = "marker", "it@office.example"
    marker.set_content("marker")
    mailer.send(marker)
    assert inbox.next()["Subject"] == "marker"  # the replayed confirmation sent nothing


def test_a_booking_does_not_wait_for_a_silent_smtp_server(web_settings: Settings) -> None:
    # A server that takes the connection and never says a word: the mailer's thread
    # waits for its greeting; the booking does not.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        mail = MailSettings(
            host="127.0.0.1", port=port, sender="hub@ex.org", starttls=False, timeout_s=1
        )
        for app, mailer in mail_app(web_settings, mail):
            client = app.test_client()
            starts = slots(client, hub(app).queue.today() + timedelta(days=1))
            body = {"service": "taxes", "starts_at": starts[0], "name": "D", "email": "d@ex.org"}
            answer = client.post("/api/v1/appointments", json=body)
            assert answer.status_code == 201  # booked; the e-mail is still in the mailer's hands
            assert (mailer.sent, mailer.failed) == (0, 0)
