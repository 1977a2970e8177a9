"""A clerk gives priority on the web panel: to the current ticket or one waiting for the
counter, audited as the clerk; finished, foreign, unknown and remote tickets are refused."""

from __future__ import annotations

import pytest
from appointment_helpers import open_for_remote
from flask.testing import FlaskClient
from test_web_clerk import CLERK, act, clerk, unguarded  # noqa: F401  (fixtures)
from web_helpers import csrf_token

from hub.model import Action, Priority
from hub.service import QueueError, QueueService


def give(client: FlaskClient, number: str, reason: str, counter: str = "1") -> str:
    """Give ``number`` priority for ``reason`` on the panel; the page after it."""
    token = csrf_token(client, "/clerk/")
    answer = client.post(
        "/clerk/priority",
        data={"counter": counter, "number": number, "reason": reason, "csrf_token": token},
    )
    assert answer.status_code == 303
    return client.get("/clerk/?lang=en").get_data(as_text=True)


def test_a_waiting_ticket_goes_ahead_and_the_clerk_is_audited(
    clerk: FlaskClient,  # noqa: F811
    web_queue: QueueService,
) -> None:
    web_queue.issue("taxes")
    second = web_queue.issue("taxes").ticket
    page = give(clerk, "a002", "with_child")
    assert "A002 now has priority." in page
    assert web_queue.engine.tickets[second.id].priority is Priority.WITH_CHILD
    events = web_queue.store.events(second.id)
    assert (events[-1].action, events[-1].actor) == (Action.PRIORITISE, f"web:{CLERK}")
    assert events[-1].detail == {"priority": "with_child", "was": None}
    page = act(clerk, "next")
    assert "Called A002." in page
    # The clerk sees why; the lobby will only see the mark.
    assert (
        '<p class="priority" data-priority="with_child">» Priority: With a small child</p>' in page
    )


def test_the_current_ticket_is_offered_and_can_be_prioritised(
    clerk: FlaskClient,  # noqa: F811
    web_queue: QueueService,
) -> None:
    web_queue.issue("waste")
    page = act(clerk, "next")
    assert 'name="number" value="B001"' in page
    page = give(clerk, "B001", "age")
    assert "B001 now has priority." in page
    assert "Priority: Older age" in page


@pytest.mark.parametrize(
    ("number", "told"),
    [
        ("C001", "No ticket C001 is at or waits for this counter."),  # parking: not counter 1's
        ("A999", "No ticket A999 is at or waits for this counter."),
        ("<b>x</b>", "No ticket &lt;B&gt;X&lt;/B&gt; is at or waits for this counter."),
    ],
)
def test_tickets_not_of_this_counter_are_refused(
    clerk: FlaskClient,  # noqa: F811
    web_queue: QueueService,
    number: str,
    told: str,
) -> None:
    web_queue.issue("parking")
    page = give(clerk, number, "disability")
    assert told in page
    assert all(t.priority is None for t in web_queue.engine.tickets.values())


def test_a_finished_ticket_and_the_same_priority_are_refused(
    clerk: FlaskClient,  # noqa: F811
    web_queue: QueueService,
) -> None:
    ticket = web_queue.issue("taxes", priority=Priority.AGE).ticket
    page = give(clerk, "A001", "age")
    assert "The ticket already has this priority." in page
    act(clerk, "next")
    act(clerk, "done")
    page = give(clerk, "A001", "pregnancy")
    assert "No ticket A001 is at or waits for this counter." in page
    stored = web_queue.store.ticket(ticket.id)
    assert stored is not None
    assert stored.priority is Priority.AGE
    # Directly through the service layer, too: a finished ticket is refused.
    with pytest.raises(QueueError) as refused:
        web_queue.prioritise(ticket.id, Priority.PREGNANCY, actor="web:jana")
    assert refused.value.code == "unknown_ticket"


@pytest.mark.parametrize(
    "data",
    [
        {"counter": "1", "number": "A001", "reason": "vip"},
        {"counter": "1", "number": "A001" * 10, "reason": "age"},
        {"counter": "1", "number": "", "reason": "age"},
        {"counter": "9", "number": "A001", "reason": "age"},
    ],
)
def test_hostile_forms_are_refused(
    clerk: FlaskClient,  # noqa: F811
    web_queue: QueueService,
    data: dict[str, str],
) -> None:
    web_queue.issue("taxes")
    token = csrf_token(clerk, "/clerk/")
    answer = clerk.post("/clerk/priority", data={**data, "csrf_token": token})
    assert answer.status_code in (400, 404)
    assert all(t.priority is None for t in web_queue.engine.tickets.values())
    # Without the CSRF token nothing happens either.
    answer = clerk.post("/clerk/priority", data={"counter": "1", "number": "A001", "reason": "age"})
    assert answer.status_code == 400


def test_giving_priority_needs_sign_in(client: FlaskClient, web_queue: QueueService) -> None:
    web_queue.issue("taxes")
    token = csrf_token(client, "/admin/login")
    form = {"counter": "1", "number": "A001", "reason": "age", "csrf_token": token}
    answer = client.post("/clerk/priority", data=form)
    assert answer.status_code == 302
    assert all(t.priority is None for t in web_queue.engine.tickets.values())


def test_a_remote_ticket_is_refused_priority(
    clerk: FlaskClient,  # noqa: F811
    web_queue: QueueService,
) -> None:
    open_for_remote(web_queue)
    remote = web_queue.issue_remote("taxes").ticket
    page = give(clerk, remote.number, "age")
    assert "A remote ticket cannot be given priority." in page
    assert web_queue.engine.tickets[remote.id].priority is None
    assert [e.action for e in web_queue.store.events(remote.id)] == [Action.ISSUE]
