"""Citizens' notices: real SMTP server, a local push service that decrypts and verifies,
a local SMS gateway; never twice across a restart, stale ones dropped, retries on 5xx."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from mail_helpers import Inbox, smtp_server
from notify_helpers import WAIT_S, Browser, Endpoint, endpoint, open_push, wait_until
from sqlalchemy import select, update
from web_helpers import ADMIN_PASSWORD, csrf_token

from common.settings import (
    DatabaseSettings,
    DataSettings,
    MailSettings,
    NotifySettings,
    Settings,
    WebSettings,
)
from hub.app import open_queue, seed_demo, start_notifier, web_app
from hub.mail import Mailer
from hub.model import Ticket
from hub.notify import VAPID_FILE, Notices, application_server_key, load_vapid
from hub.notify_send import LOW_NICE
from hub.notify_texts import TEXTS
from hub.service import QueueService
from hub.siteconfig import SiteConfig
from hub.stats import NoticeCount
from hub.store import metadata
from hub.users import Users

NOTIFICATIONS = metadata.tables["notifications"]
SUBSCRIPTIONS = metadata.tables["notify_subscriptions"]


@dataclass
class Office:
    """A hub's queue with its notices, the SMTP server, push service and SMS gateway."""

    settings: Settings
    inbox: Inbox
    push: Endpoint
    sms: Endpoint
    queue: QueueService
    notices: Notices

    @property
    def server_key(self) -> str:
        assert self.notices.vapid is not None
        return application_server_key(self.notices.vapid)

    def restart(self) -> None:
        """Stop the notices and the store, and open both again (a hub restart)."""
        self.notices.stop()
        self.queue.store.close()
        self.queue = open_queue(self.settings)
        self.notices = start_notices(self.settings, self.queue)

    def states(self, ticket: str) -> dict[tuple[str, str], str]:
        """(kind, channel) → state of ``ticket``'s notices."""
        with self.queue.store.db.connect() as conn:
            rows = conn.execute(
                select(NOTIFICATIONS.c.kind, NOTIFICATIONS.c.channel, NOTIFICATIONS.c.state).where(
                    NOTIFICATIONS.c.ticket == ticket
                )
            )
            return {(kind, channel): state for kind, channel, state in rows}

    def settled(self, ticket: str, count: int) -> dict[tuple[str, str], str]:
        """``ticket``'s notices once ``count`` of them are final."""
        final = {"sent", "failed", "dropped"}
        wait_until(lambda: sum(s in final for s in self.states(ticket).values()) >= count)
        return self.states(ticket)

    def attempts(self, ticket: str) -> dict[str, int]:
        """How often each of ``ticket``'s notices was tried, by channel."""
        n = NOTIFICATIONS
        with self.queue.store.db.connect() as conn:
            query = select(n.c.channel, n.c.attempts).where(n.c.ticket == ticket)
            return {channel: attempts for channel, attempts in conn.execute(query)}

    def subscribe_all(self, ticket: Ticket, browser: Browser, lang: str) -> None:
        self.notices.subscribe(ticket.id, "push", browser.subscription(), lang)
        self.notices.subscribe(ticket.id, "email", f"citizen-{ticket.number}@example.org", lang)
        self.notices.subscribe(ticket.id, "sms", "+421 900 123 456", lang)


def make_notices(settings: Settings, queue: QueueService) -> Notices:
    return Notices(
        queue,
        settings.notify,
        mailer=Mailer(settings.mail),
        vapid=load_vapid(settings.data.dir),
        public_url="https://portal.example",
        office_name=lambda: "Mestský úrad",
    )


def start_notices(settings: Settings, queue: QueueService) -> Notices:
    return make_notices(settings, queue).start()


def notify_settings(push: Endpoint, sms: Endpoint, **more: Any) -> NotifySettings:
    options: dict[str, Any] = {
        "push_hosts": ["127.0.0.1"],
        "push_allow_http": True,
        "sms_url": sms.url("/sms?key=k1"),
        "sms_headers": {"Authorization": "Bearer city-token"},
        "backoff_s": [0.05, 0.1, 0.2],
        "workers": 4,
        **more,
    }
    return NotifySettings(**options)


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
"""For ``office``'s indirect parameter: its database (SQLite by default)."""


@pytest.fixture
def office(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Office]:
    postgres = getattr(request, "param", "sqlite") == "postgres"
    url = request.getfixturevalue("postgres_url") if postgres else None
    with smtp_server() as inbox, endpoint() as push, endpoint() as sms:
        settings = Settings(
            role="hub",
            database=DatabaseSettings(url=url),
            data=DataSettings(dir=tmp_path / "hub"),
            web=WebSettings(host="127.0.0.1", secure_cookies=False),
            mail=inbox.settings(),
            notify=notify_settings(push, sms),
        )
        queue = open_queue(settings)
        seed_demo(queue)
        queue.counter_action("1", "resume")
        here = Office(settings, inbox, push, sms, queue, start_notices(settings, queue))
        yield here
        here.notices.stop()
        here.queue.store.close()


def line(office: Office, lang: str = "sk", before: int = 4) -> Ticket:
    """A ticket for taxes with ``before`` people ahead of it."""
    for _ in range(before):
        office.queue.issue("taxes")
    return office.queue.issue("taxes", lang=lang).ticket


@pytest.mark.parametrize("lang", ["sk", "cs", "uk", "en"])
def test_each_channel_tells_few_ahead_then_the_call(office: Office, lang: str) -> None:
    ticket = line(office, lang)
    browser = Browser.make(office.push)
    office.subscribe_all(ticket, browser, lang)
    office.queue.counter_action("1", "next")  # 3 ahead now

    texts = TEXTS[lang]  # type: ignore[index]
    mail = office.inbox.next()
    assert mail["To"] == f"citizen-{ticket.number}@example.org"
    assert mail["Subject"] == texts["ahead"][0].format(number=ticket.number)
    body = mail.get_content()
    assert ticket.number in body
    assert "3" in body
    assert f"https://portal.example/t/{ticket.id}" in body
    push = open_push(office.push.next(), browser, office.server_key)
    assert push["title"] == texts["ahead"][0].format(number=ticket.number)
    assert push["url"] == f"/t/{ticket.id}"
    sms = office.sms.next()
    assert sms.path == "/sms?key=k1"
    assert sms.headers["authorization"] == "Bearer city-token"
    message = json.loads(sms.body)
    assert message["to"] == "+421900123456"
    assert ticket.number in message["text"]

    for _ in range(4):
        office.queue.counter_action("1", "next")
    mail = office.inbox.next()
    assert mail["Subject"] == texts["called"][0].format(number=ticket.number, counter="Okienko 1")
    assert "Okienko 1" in mail.get_content()
    push = open_push(office.push.next(), browser, office.server_key)
    assert "Okienko 1" in push["body"]
    assert "Okienko 1" in json.loads(office.sms.next().body)["text"]
    states = office.settled(ticket.id, 6)
    assert set(states.values()) == {"sent"}
    assert len(states) == 6


def test_a_holder_far_back_is_told_only_once_few_are_ahead(office: Office) -> None:
    far = line(office, before=6)
    office.notices.subscribe(far.id, "sms", "+421900123456", "en")
    near = office.queue.issue("parking").ticket  # none ahead: told at once
    office.notices.subscribe(near.id, "sms", "+421900654321", "en")
    assert office.settled(near.id, 1) == {("ahead", "sms"): "sent"}
    assert near.number in json.loads(office.sms.next().body)["text"]
    assert office.states(far.id) == {}  # 6 ahead, looked at in the same round or before
    for _ in range(3):
        office.queue.counter_action("1", "next")
    assert office.settled(far.id, 1) == {("ahead", "sms"): "sent"}
    assert far.number in json.loads(office.sms.next().body)["text"]


@pytest.mark.parametrize("office", DATABASES, indirect=True)
def test_never_twice_across_a_restart(office: Office) -> None:
    ticket = line(office)
    browser = Browser.make(office.push)
    office.subscribe_all(ticket, browser, "en")
    office.queue.counter_action("1", "next")
    office.settled(ticket.id, 3)
    open_push(office.push.next(), browser, office.server_key)
    office.sms.next()
    # A notice caught being sent when the hub stopped was perhaps delivered: not again.
    other = office.queue.issue("parking").ticket
    office.notices.subscribe(other.id, "email", "other@example.org", "en")
    office.settled(other.id, 1)
    assert {office.inbox.next()["To"] for _ in range(2)} == {
        f"citizen-{ticket.number}@example.org",
        "other@example.org",
    }
    with office.queue.store.transaction() as conn:
        conn.execute(
            update(NOTIFICATIONS)
            .where(NOTIFICATIONS.c.ticket == other.id)
            .values(state="sending", done_at=None)
        )

    office.restart()
    assert office.states(other.id) == {("ahead", "email"): "failed"}
    office.queue.counter_action("1", "next")  # 2 ahead: the "few ahead" notice went already
    late = office.queue.issue("info").ticket
    office.notices.subscribe(late.id, "email", "late@example.org", "en")
    assert office.inbox.next()["To"] == "late@example.org"
    assert office.inbox.received.empty()
    assert office.push.received.empty()
    assert office.sms.received.empty()
    assert office.states(ticket.id) == {
        ("ahead", "email"): "sent",
        ("ahead", "push"): "sent",
        ("ahead", "sms"): "sent",
    }


@pytest.mark.parametrize(
    ("how", "why"),
    [(signal.SIGKILL, "it died"), (signal.SIGSTOP, "it said nothing for 5.6 s")],
    ids=["dies", "hangs"],
)
def test_a_sending_process_lost_mid_batch_is_started_again_and_nothing_goes_twice(
    office: Office, caplog: pytest.LogCaptureFixture, how: signal.Signals, why: str
) -> None:
    caplog.set_level(logging.INFO, logger="hub.notify_send")
    office.notices.stop()
    # One notice at a time: of two in a batch, one waits its turn. No e-mail, and
    # pushes time out after 0.2 s: a silent process is given up after 3 × 0.2 + 5 s.
    notify = notify_settings(office.push, office.sms, workers=1, timeout_s=0.2)
    office.settings = office.settings.model_copy(update={"notify": notify, "mail": MailSettings()})
    release = threading.Event()
    office.push.holds.append(release)
    notices = make_notices(office.settings, office.queue)
    first, second = line(office, before=0), line(office, before=0)
    browsers = {ticket.id: Browser.make(office.push) for ticket in (first, second)}
    for ticket_id, browser in browsers.items():
        notices.subscribe(ticket_id, "push", browser.subscription(), "en")
    office.notices = notices.start()  # both notices are due: one batch
    assert office.push.holding.wait(WAIT_S)  # one is being sent, the other not begun
    pid = notices.sender.pid
    assert pid is not None
    os.kill(pid, how)

    # The one begun was perhaps delivered: not again. The other goes once, from a new
    # sending process.
    final = {"sent", "failed"}
    wait_until(
        lambda: all(s in final for t in browsers for s in office.states(t).values()),
        timeout=3 * WAIT_S,
    )
    states = {t: office.states(t)[("ahead", "push")] for t in browsers}
    assert sorted(states.values()) == ["failed", "sent"]
    release.set()
    arrived = [office.push.next() for _ in browsers]
    paths = sorted(urlsplit(browser.endpoint).path for browser in browsers.values())
    assert sorted(request.path for request in arrived) == paths
    assert notices.sender.pid not in (None, pid)
    with office.queue.store.db.connect() as conn:
        reasons = dict(conn.execute(select(NOTIFICATIONS.c.ticket, NOTIFICATIONS.c.reason)).all())
    held = next(t for t, state in states.items() if state == "failed")
    assert reasons[held] == "interrupted: perhaps delivered"
    logged = caplog.text
    assert f"notices' sending process (pid {pid}) lost: {why}" in logged
    assert "notices' sending process started again" in logged
    office.queue.counter_action("1", "next")  # nothing more is due
    assert office.push.received.empty()


def sender_pid(office: Office) -> int:
    """The pid of the notices' sending process, once it has sent a notice."""
    ticket = line(office, before=0)
    office.notices.subscribe(ticket.id, "sms", "+421900123456", "en")
    assert office.settled(ticket.id, 1) == {("ahead", "sms"): "sent"}
    pid = office.notices.sender.pid
    assert pid is not None
    return pid


def test_the_sending_process_runs_in_the_idle_scheduling_class(office: Office) -> None:
    assert office.settings.notify.priority == "idle"
    assert os.sched_getscheduler(sender_pid(office)) == os.SCHED_IDLE
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # the hub's own is unchanged


def test_the_sending_process_may_run_at_a_lower_niceness(office: Office) -> None:
    office.notices.stop()
    notify = notify_settings(office.push, office.sms, priority="low")
    office.settings = office.settings.model_copy(update={"notify": notify})
    office.notices = start_notices(office.settings, office.queue)
    pid = sender_pid(office)
    assert os.sched_getscheduler(pid) == os.SCHED_OTHER
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + LOW_NICE)


def test_a_failure_is_tried_again_after_a_pause(office: Office) -> None:
    office.push.answers[:] = [503, 502]
    office.sms.answers[:] = [500]
    ticket = line(office)
    browser = Browser.make(office.push)
    office.notices.subscribe(ticket.id, "push", browser.subscription(), "en")
    office.notices.subscribe(ticket.id, "sms", "+421900123456", "en")
    office.queue.counter_action("1", "next")
    assert open_push(office.push.next(), browser, office.server_key)["body"]
    office.sms.next()
    assert office.settled(ticket.id, 2) == {("ahead", "push"): "sent", ("ahead", "sms"): "sent"}
    assert office.attempts(ticket.id) == {"push": 3, "sms": 2}


@contextmanager
def refusing(office: Office, statement: str) -> Iterator[None]:
    """The office's database refuses ``statement`` (``BEFORE INSERT ON …``) meanwhile."""
    with office.queue.store.transaction() as conn:
        conn.exec_driver_sql(
            f"CREATE TRIGGER refuse {statement} BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    try:
        yield
    finally:
        with office.queue.store.transaction() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse")


def test_a_round_whose_write_fails_loses_no_notice(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = line(office)  # 4 ahead: no notice yet
    office.notices.subscribe(ticket.id, "sms", "+421900123456", "en")
    with refusing(office, "BEFORE INSERT ON notifications"):  # no new notice for a while
        office.queue.counter_action("1", "next")  # 3 ahead: the notice is due
        wait_until(lambda: "a round failed" in caplog.text)
    assert ticket.number in json.loads(office.sms.next().body)["text"]
    assert office.settled(ticket.id, 1) == {("ahead", "sms"): "sent"}


def test_a_sent_notice_whose_record_fails_is_recorded_by_a_later_round(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = line(office)
    office.notices.subscribe(ticket.id, "sms", "+421900123456", "en")
    with refusing(office, "BEFORE UPDATE ON notifications WHEN NEW.state = 'sent'"):
        office.queue.counter_action("1", "next")
        assert ticket.number in json.loads(office.sms.next().body)["text"]
        wait_until(lambda: "a round failed" in caplog.text)
        assert office.states(ticket.id) == {("ahead", "sms"): "sending"}
    assert office.settled(ticket.id, 1) == {("ahead", "sms"): "sent"}
    assert office.attempts(ticket.id) == {"sms": 1}  # sent once


def test_a_claimed_notice_whose_round_fails_before_sending_goes_later(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    office.notices.stop()
    reads: list[str] = []

    def office_name() -> str:  # the branding cannot be read the first time
        reads.append("read")
        if len(reads) == 1:
            raise OSError("disk I/O error")
        return "Mestský úrad"

    office.notices = Notices(
        office.queue,
        office.settings.notify,
        vapid=load_vapid(office.settings.data.dir),
        office_name=office_name,
    ).start()
    ticket = line(office, before=0)
    office.notices.subscribe(ticket.id, "sms", "+421900123456", "en")
    assert office.settled(ticket.id, 1) == {("ahead", "sms"): "sent"}
    assert "a round failed" in caplog.text
    assert ticket.number in json.loads(office.sms.next().body)["text"]
    assert office.attempts(ticket.id) == {"sms": 1}  # the failed round's claim not counted
    assert len(reads) == 2  # written again in the next round


def test_a_refused_notice_is_given_up_and_a_gone_subscription_too(office: Office) -> None:
    office.push.answers[:] = [410]
    office.sms.answers[:] = [503, 503, 503, 503]
    ticket = line(office)
    office.notices.subscribe(ticket.id, "push", Browser.make(office.push).subscription(), "en")
    office.notices.subscribe(ticket.id, "sms", "+421900123456", "en")
    office.queue.counter_action("1", "next")
    assert office.settled(ticket.id, 2) == {
        ("ahead", "push"): "failed",
        ("ahead", "sms"): "failed",
    }
    assert office.notices.subscribed(ticket.id) == {"sms"}  # the browser dropped it
    today = office.queue.today()
    assert office.queue.notices(today, today) == [
        NoticeCount("push", failed=1),
        NoticeCount("sms", failed=1),
    ]


def test_a_stale_notice_is_dropped(office: Office) -> None:
    office.push.answers[:] = [503]
    office.notices.settings.backoff_s[:] = [5.0]
    ticket = line(office, before=3)
    browser = Browser.make(office.push)
    office.notices.subscribe(ticket.id, "push", browser.subscription(), "en")
    wait_until(lambda: office.states(ticket.id).get(("ahead", "push")) == "pending")
    wait_until(lambda: office.push.answers == [])
    for _ in range(4):
        office.queue.counter_action("1", "next")  # called before the retry is due
    push = open_push(office.push.next(), browser, office.server_key)
    assert "Okienko 1" in push["body"]
    office.notices.settings.backoff_s[:] = [0.01]
    assert office.settled(ticket.id, 1)[("called", "push")] == "sent"
    with office.queue.store.transaction() as conn:
        conn.execute(update(NOTIFICATIONS).values(next_at=datetime.now(UTC)))
    office.notices._wake.set()
    assert office.settled(ticket.id, 2) == {
        ("ahead", "push"): "dropped",
        ("called", "push"): "sent",
    }
    assert office.push.received.empty()


def test_contacts_are_erased_after_the_grace(office: Office) -> None:
    ticket = line(office, before=0)
    office.notices.subscribe(ticket.id, "email", "erase-me@example.org", "en")
    office.inbox.next()
    office.queue.counter_action("1", "next")
    office.inbox.next()
    office.queue.counter_action("1", "done")
    office.queue.issue("taxes")  # a change the notices look at: the ticket has ended
    ended = select(SUBSCRIPTIONS.c.ended_at).where(SUBSCRIPTIONS.c.ticket == ticket.id)

    def has_ended() -> bool:
        with office.queue.store.db.connect() as conn:
            return conn.execute(ended).scalar() is not None

    wait_until(has_ended)
    assert office.notices.sweep() == 0  # within the grace
    with office.queue.store.transaction() as conn:
        conn.execute(
            update(SUBSCRIPTIONS).values(ended_at=datetime.now(UTC) - timedelta(minutes=31))
        )
    assert office.notices.sweep() == 1
    assert office.notices.subscribed(ticket.id) == set()
    assert office.states(ticket.id) == {("ahead", "email"): "sent", ("called", "email"): "sent"}


def test_the_vapid_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = load_vapid(tmp_path)
    mode = stat.S_IMODE((tmp_path / VAPID_FILE).stat().st_mode)
    assert mode == 0o600
    assert application_server_key(load_vapid(tmp_path)) == application_server_key(first)


@pytest.mark.parametrize(
    ("channel", "contact"),
    [
        ("email", "not an address"),
        ("email", "a@b.c\r\nBcc: x@y.z"),
        ("sms", "call me"),
        ("push", "{}"),
        ("push", "x" * 5000),
        (
            "push",
            json.dumps(
                {"endpoint": "https://evil.example/p", "keys": {"p256dh": "AA", "auth": "AA"}}
            ),
        ),
        (
            "push",
            json.dumps({"endpoint": "file:///etc/passwd", "keys": {"p256dh": "AA", "auth": "AA"}}),
        ),
        ("fax", "123"),
    ],
)
def test_hostile_contacts_are_refused(office: Office, channel: str, contact: str) -> None:
    ticket = line(office, before=0)
    with pytest.raises(ValueError, match=r"not|off|long|push service|channel"):
        office.notices.subscribe(ticket.id, channel, contact, "en")
    assert office.notices.subscribed(ticket.id) == set()


def test_the_portal_keeps_contacts_and_erases_them(office: Office) -> None:
    app = web_app(office.settings, office.queue, notices=office.notices, config={"TESTING": True})
    client: FlaskClient = app.test_client()
    ticket = office.queue.issue("taxes", lang="en").ticket
    page = client.get(f"/t/{ticket.id}?lang=en").get_data(as_text=True)
    assert f"/t/{ticket.id}/notify" in page
    url = f"/t/{ticket.id}/notify"
    notify_page = client.get(url).get_data(as_text=True)
    assert "erased 30 minutes after it ends" in notify_page
    assert office.server_key in notify_page
    token = csrf_token(client, url)
    answer = client.post(url, data={"csrf_token": token, "email": "me@example.org"})
    assert answer.status_code == 303
    assert office.inbox.next()["To"] == "me@example.org"  # nobody ahead: told at once
    bad = client.post(url, data={"csrf_token": token, "phone": "<script>"})
    assert bad.status_code == 400
    push = client.post(
        f"{url}/push",
        data=Browser.make(office.push).subscription(),
        headers={"X-CSRFToken": token, "Content-Type": "application/json"},
    )
    assert push.status_code == 201
    refused = client.post(
        f"{url}/push", data="{", headers={"X-CSRFToken": token, "Content-Type": "application/json"}
    )
    assert refused.status_code == 400
    assert client.post(f"{url}/push", data="{}").status_code == 400  # no CSRF token
    assert office.notices.subscribed(ticket.id) == {"email", "push"}
    assert client.post(url, data={"csrf_token": token, "forget": "1"}).status_code == 303
    assert office.notices.subscribed(ticket.id) == set()
    assert client.get("/t/" + "0" * 32 + "/notify").status_code == 404
    worker = client.get("/sw.js")
    assert worker.status_code == 200
    assert b"showNotification" in worker.data


def test_statistics_count_notices_per_channel(office: Office) -> None:
    ticket = line(office, before=0)
    office.notices.subscribe(ticket.id, "email", "count-me@example.org", "en")
    office.notices.subscribe(ticket.id, "sms", "+421900123456", "en")
    office.settled(ticket.id, 2)
    app = web_app(office.settings, office.queue, notices=office.notices, config={"TESTING": True})
    client = app.test_client()
    client.set_cookie("lang", "en")  # the English wording
    Users(office.queue.store).add("admin", ADMIN_PASSWORD, "admin")
    token = csrf_token(client, "/admin/login")
    login = {"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token}
    assert client.post("/admin/login", data=login).status_code == 302
    page = client.get("/admin/statistics").get_data(as_text=True)
    assert "Notices to citizens" in page
    csv_text = client.get("/admin/statistics/notices.csv").get_data(as_text=True)
    assert csv_text.splitlines() == [
        "channel,sent,failed,dropped,pending",
        "email,1,0,0,0",
        "sms,1,0,0,0",
    ]


def test_a_notice_names_the_office_as_the_admin_last_saved_it(office: Office) -> None:
    office.notices.stop()
    site = SiteConfig(office.queue.store, office.settings)
    notices = start_notifier(office.settings, office.queue, Mailer(office.settings.mail), site)
    assert notices is not None
    office.notices = notices
    app = web_app(office.settings, office.queue, site=site, config={"TESTING": True})
    admin = app.test_client()
    Users(office.queue.store).add("admin", ADMIN_PASSWORD, "admin")
    token = csrf_token(admin, "/admin/login")
    login = {"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token}
    assert admin.post("/admin/login", data=login).status_code == 302
    first = line(office, "en", before=0)
    office.notices.subscribe(first.id, "email", "first@example.org", "en")
    assert site.branding().office_name in office.inbox.next().get_content()
    form = {
        "office_name": "Mesto Trnava",
        "accent_color": "#1d4d2b",
        "languages": "sk, en",
        "footer": "",
        "csrf_token": csrf_token(admin, "/admin/branding"),
    }
    assert admin.post("/admin/branding", data=form).status_code == 302
    office.queue.counter_action("1", "next")  # the first is called: one more e-mail
    assert "Mesto Trnava" in office.inbox.next().get_content()
