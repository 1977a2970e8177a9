"""Clerks and their counters: assignment, refusals, the seat at a counter, per-clerk figures."""

from __future__ import annotations

import queue
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from office_helpers import RunningHub
from web_helpers import ADMIN_PASSWORD, csrf_token

from common.settings import DataSettings, Settings, WebSettings
from hub import clerks
from hub.app import web_app
from hub.service import QueueService
from hub.users import UserRole, Users
from hub.web.context import hub as hub_of
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

WAIT_S = 10.0


def signed_in(app: Flask, username: str, role: UserRole = "clerk") -> FlaskClient:
    """A browser of ``username``, signed in (the user is created)."""
    client = app.test_client()
    Users(hub_of(app).queue.store).add(username, ADMIN_PASSWORD, role)
    answer = client.post(
        "/admin/login",
        data={
            "username": username,
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_token(client, "/admin/login"),
        },
    )
    assert answer.status_code == 302
    return client


def assign(
    admin: FlaskClient,
    username: str,
    counters: list[str],
    services: list[str],
    *,
    active: bool = True,
) -> None:
    """Give ``username`` (a clerk) counters and services on the users page."""
    data = {
        "username": username,
        "role": "clerk",
        "counters": counters,
        "services": services,
        "csrf_token": csrf_token(admin, "/admin/users"),
    }
    answer = admin.post("/admin/users", data={**data, "active": "y"} if active else data)
    assert answer.status_code == 302, answer.get_data(as_text=True)


def offered(client: FlaskClient) -> list[str]:
    page = client.get("/clerk/counter").get_data(as_text=True)
    return re.findall(r'name="counter" value="([^"]+)"', page)


def choose(client: FlaskClient, counter: str) -> int:
    token = csrf_token(client, "/clerk/counter")
    return client.post("/clerk/counter", data={"counter": counter, "csrf_token": token}).status_code


def press(client: FlaskClient, counter: str, action: str, seen: str = "") -> int:
    """A crafted POST of a button (the CSRF token is the browser's own)."""
    data = {
        "counter": counter,
        "action": action,
        "seen": seen,
        "csrf_token": csrf_token(client, "/admin/statistics"),
    }
    return client.post("/clerk/act", data=data).status_code


def test_a_clerk_is_offered_only_the_assigned_counters(admin: FlaskClient, app: Flask) -> None:
    jana = signed_in(app, "jana")
    assert offered(jana) == ["1", "2", "3", "4", "5"]  # nothing assigned: any counter
    assign(admin, "jana", ["1", "3"], [])
    assert offered(jana) == ["1", "3"]
    # Services narrow the counters: only those serving one of the clerk's services.
    assign(admin, "jana", [], ["parking"])
    assert offered(jana) == ["3", "4", "5"]
    assign(admin, "jana", ["1", "3"], ["parking"])
    assert offered(jana) == ["3"]
    # The users page shows the assignment and fills the form to change it.
    page = admin.get("/admin/users?user=jana").get_data(as_text=True)
    assert re.search(r'<option selected value="3">|<option value="3" selected>', page)
    assert "<td>1, 3</td><td>parking</td>" in page


def test_a_clerk_with_no_workable_counter_is_told_so(admin: FlaskClient, app: Flask) -> None:
    jana = signed_in(app, "jana")
    assign(admin, "jana", ["2"], ["parking"])  # counter 2 serves only taxes
    page = jana.get("/clerk/counter?lang=en").get_data(as_text=True)
    assert "No counter is assigned to you" in page


def test_crafted_posts_for_another_counter_are_403(admin: FlaskClient, app: Flask) -> None:
    jana = signed_in(app, "jana")
    assign(admin, "jana", ["1"], [])
    assert choose(jana, "1") == 302
    assert choose(jana, "2") == 403
    assert press(jana, "2", "resume") == 403
    assert jana.get("/clerk/fragment/2").status_code == 403
    queue: QueueService = hub_of(app).queue
    assert state(queue, "2") == "paused"  # as the day began: nothing was done
    assert press(jana, "1", "resume") == 303  # their own counter works
    assert state(queue, "1") == "open"
    # A counter chosen before the admin took it away is not worked at any more.
    assign(admin, "jana", ["3"], [])
    assert jana.get("/clerk/").headers["Location"] == "/clerk/counter"
    # Admins work at any counter.
    assert press(admin, "2", "resume") == 303
    assert state(queue, "2") == "open"


def state(queue: QueueService, counter_id: str) -> str:
    counter = queue.counter(counter_id)
    assert counter is not None
    return counter.state.value


def test_the_seat_follows_the_clerk(app: Flask) -> None:
    queue: QueueService = hub_of(app).queue
    jana = signed_in(app, "jana")
    assert queue.clerks.at("1", queue.clock()) is None
    assert choose(jana, "1") == 302
    assert queue.clerks.at("1", queue.clock()) == "jana"
    lifetime = app.permanent_session_lifetime
    assert queue.clerks.at("1", queue.clock() + lifetime + timedelta(seconds=1)) is None
    assert choose(jana, "2") == 302  # a switch leaves counter 1
    assert (queue.clerks.at("1", queue.clock()), queue.clerks.at("2", queue.clock())) == (
        None,
        "jana",
    )
    peter = signed_in(app, "peter")
    assert choose(peter, "2") == 302  # another clerk takes the counter
    assert queue.clerks.seated(queue.clock()) == {"2": "peter"}
    peter.post("/admin/logout", data={"csrf_token": csrf_token(peter, "/clerk/counter")})
    assert queue.clerks.seated(queue.clock()) == {}
    # An admin who takes a clerk's access away (or gives a new password) unseats them.
    assert choose(jana, "3") == 302
    admin = signed_in(app, "eva", "admin")
    assign(admin, "jana", [], [], active=False)
    assert queue.clerks.seated(queue.clock()) == {}


def test_button_panel_actions_count_for_the_seated_clerk(
    hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path
) -> None:
    settings = Settings(
        role="hub",
        data=DataSettings(dir=tmp_path / "hub"),
        web=WebSettings(host="127.0.0.1", secure_cookies=False),
    )
    app = web_app(settings, hub.queue, config={"TESTING": True})
    jana = signed_in(app, "jana")
    assert choose(jana, "1") == 302
    for _ in range(3):
        hub.queue.issue("taxes")
    panel = device("panel-p1")
    replies: queue.Queue[p.Message] = queue.Queue()
    panel.on_reply(lambda _cmd, reply: replies.put(reply))

    def button(action: str) -> None:
        command = p.CounterCommand(msg_id=uuid.uuid4().hex, action=action)
        panel.send(panel.topics.counter_cmd("1"), command)
        assert isinstance(replies.get(timeout=WAIT_S), p.CommandReply)

    for action in ("next", "done", "next", "no_show", "pause"):
        button(action)
    # After sign-out the panel acts for nobody.
    jana.post("/admin/logout", data={"csrf_token": csrf_token(jana, "/clerk/counter")})
    button("resume")
    button("next")
    button("done")
    today = hub.queue.today()
    [figures] = clerks.clerk_statistics(
        hub.queue.store, today, today, timezone=hub.queue.timezone, now=hub.queue.clock()
    )
    assert (figures.clerk, figures.served, figures.no_shows, figures.pauses) == ("jana", 1, 1, 1)
    assert len(figures.service_times) == 1
    assert figures.mean_service_s is not None


def test_only_admins_see_the_clerks_figures(admin: FlaskClient, app: Flask) -> None:
    queue: QueueService = hub_of(app).queue
    jana = signed_in(app, "jana")
    assert choose(jana, "1") == 302
    queue.issue("taxes")
    page = jana.get("/clerk/").get_data(as_text=True)
    seen = re.search(r'name="seen" value="([^"]*)"', page)
    assert seen is not None
    assert press(jana, "1", "next", seen.group(1)) == 303
    current = queue.counter("1")
    assert current is not None
    assert current.current is not None
    assert press(jana, "1", "done", current.current) == 303
    assert press(jana, "1", "pause") == 303
    assert press(jana, "1", "resume") == 303
    stats = admin.get("/admin/statistics").get_data(as_text=True)
    row = re.search(
        r"<tr><td>jana</td><td>(\d+)</td><td>[^<]*</td><td>(\d+)</td><td>(\d+)</td>", stats
    )
    assert row is not None
    assert row.groups() == ("1", "0", "1")
    csv = admin.get("/admin/statistics/clerks.csv")
    assert csv.status_code == 200
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0] == "clerk,served,mean_service_s,no_shows,pauses,paused_s"
    assert lines[1].startswith("jana,1,")
    assert "data-clerks" not in jana.get("/admin/statistics").get_data(as_text=True)
    assert jana.get("/admin/statistics/clerks.csv").status_code == 403
