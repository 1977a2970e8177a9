"""Priority tickets: only kiosks and clerks give them; anonymous callers of the API cannot.

A priority ticket is called before everyone else of its service, so taking one over the
open ``POST /api/v1/tickets`` would let anyone jump the queue. The attack is replayed
on the web app (Flask's test client on a real store) and the kiosk's own way, over a real
Mosquitto, is shown to still work.
"""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from office_helpers import RunningHub

from hub.model import Priority
from hub.service import QueueService
from hub.users import ApiTokens
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

API = "/api/v1"


def test_an_anonymous_caller_cannot_take_a_priority_ticket(
    client: FlaskClient, web_queue: QueueService
) -> None:
    tokens = ApiTokens(web_queue.store)
    wrong_scope = tokens.issue("imesto", ("eservice", "statistics"))
    for authorization in (None, "Bearer nonsense", wrong_scope, f"Bearer {wrong_scope}"):
        headers = {"Authorization": authorization} if authorization else {}
        answer = client.post(
            f"{API}/tickets", json={"service": "taxes", "priority": "other"}, headers=headers
        )
        assert answer.status_code == 403, answer.get_data(as_text=True)
        assert answer.get_json()["error"]["code"] == "priority_not_allowed"
    assert web_queue.store.count_tickets() == 0
    # Without a priority, anyone still takes a ticket.
    assert client.post(f"{API}/tickets", json={"service": "taxes"}).status_code == 201


def test_a_clerks_system_gives_priority(client: FlaskClient, web_queue: QueueService) -> None:
    clerks = ApiTokens(web_queue.store).issue("clerks", ("counters",))
    first = client.post(f"{API}/tickets", json={"service": "taxes"}).get_json()
    answer = client.post(
        f"{API}/tickets",
        json={"service": "taxes", "priority": "pregnancy"},
        headers={"Authorization": f"Bearer {clerks}"},
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    ticket = web_queue.store.ticket(answer.get_json()["id"])
    assert ticket is not None
    assert ticket.priority is Priority.PREGNANCY
    assert answer.get_json()["people_ahead"] == 0  # ahead of the earlier A001
    assert first["number"] == "A001"


def test_a_kiosk_still_gives_priority_over_mqtt(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    kiosk = device("kiosk-k1")
    request = p.IssueRequest(msg_id="prio", service="taxes", priority="disability")
    reply = kiosk.request(kiosk.topics.kiosk_issue("k1"), request, timeout_s=10)
    assert isinstance(reply, p.TicketReply), reply
    ticket = hub.queue.store.ticket(reply.ticket_id)
    assert ticket is not None
    assert ticket.priority is Priority.DISABILITY
