"""Statistics of remote tickets: taken, checked in, expired, on a hand-built day."""

from __future__ import annotations

from datetime import UTC

from flask.testing import FlaskClient
from test_stats_appointments import DAY, TZ, day_statistics, local, visit

from hub import demo_office, stats
from hub.model import Change, TicketState
from hub.service import QueueService
from hub.store import Store
from hub.users import ApiTokens


def build_day(store: Store) -> None:
    """A walk-in and three remote tickets: one checked in and served, two expired unchecked."""
    for service in demo_office.SERVICES:
        store.save_service(service)
    served = visit(2, "08:05", "08:20", "08:30", TicketState.DONE).evolve(
        remote_code="111111", checked_in_at=local("08:15")
    )
    expired = [
        visit(n, "08:10", "08:40", "08:40", TicketState.EXPIRED).evolve(
            remote_code=f"22222{n}", counter=None, calls=0, called_at=None, passes=3
        )
        for n in (3, 4)
    ]
    tickets = (visit(1, "08:00", "08:10", "08:15", TicketState.DONE), served, *expired)
    store.write(Change(tickets=tickets, new_ticket_ids=frozenset(t.id for t in tickets)))


def test_remote_tickets_are_counted_apart(store: Store) -> None:
    build_day(store)
    figures = stats.compute(store, DAY, DAY, timezone=TZ, target_wait_s=900)
    remote = figures.remote
    assert (remote.taken, remote.checked_in, remote.expired) == (3, 1, 2)
    assert figures.total.tickets == 4


def test_the_statistics_page_and_csv_show_remote_tickets(
    admin: FlaskClient, web_queue: QueueService
) -> None:
    build_day(web_queue.store)
    page, rows = day_statistics(admin)
    assert (
        "Taken on the portal: 3 · checked in at a kiosk: 1 · expired without a check-in: 2" in page
    )
    assert [row["remote"] for row in rows] == ["False", "True", "True", "True"]
    assert rows[1]["checked_in_at"] == local("08:15").astimezone(UTC).isoformat()


def test_the_api_gives_the_remote_figures(web_queue: QueueService, client: FlaskClient) -> None:
    build_day(web_queue.store)
    token = ApiTokens(web_queue.store).issue("bi", ("statistics",))
    answer = client.get(
        f"/api/v1/statistics?from={DAY.isoformat()}&to={DAY.isoformat()}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    assert answer.get_json()["remote"] == {"taken": 3, "checked_in": 1, "expired": 2}
