"""Statistics checked against a day computed by hand: every figure, CSV cell and chart bar.

The day (Monday 2 March 2026, Europe/Bratislava, UTC+1) is played through the queue
service with a clock set to each step's time, so the history is what a real hub
writes. Times below are local; the CSV has them in UTC.

    08:00 A001 issued (taxes)           08:40 counter 1 calls B001
    08:05 B001 issued (waste)           08:41, 08:42 recalls; 08:43 a fourth call: no-show
    08:10 A002 issued (taxes)           09:05 C001 issued (parking)
    08:12 counter 1 calls A001          09:10 counter 1 pauses
    08:15 counter 2 calls A002          09:20 counter 3 calls C001
    08:16 counter 1 recalls A001        09:26 counter 3: C001 done
    08:17 counter 1 starts A001         09:30 D001 issued (info); nobody calls it
    08:20 counter 1 transfers A001 to waste (it keeps its arrival, 08:00)
    08:21 counter 2 parks A002          Tuesday 00:30 (Monday 23:30 UTC): the day rolls
    08:22 counter 3 calls A001 (waste)      over, D001 expires; A001 of Tuesday issued
    08:30 counter 3: A001 done          Tuesday 00:40 counter 5 calls it, 00:50 done
    08:31 counter 2 calls A002 back
    08:35 counter 2: A002 done
    08:36 counter 2 pauses

Each ticket (wait = first call - issue; service = first call in the last service to
the end, less the time parked; target 15 min = 900 s, "within" is wait <= 900):

    ticket  route          state    counter  wait    service              issued
    A001    taxes > waste  done     3        720 s   08:22-08:30 = 480 s  08 h
    B001    waste          no_show  1        2100 s  -                    08 h
    A002    taxes          done     2        300 s   08:15-08:35 less     08 h
                                                     08:21-08:31 = 600 s
    C001    parking        done     3        900 s   360 s                09 h
    D001    info           expired  -        -       -                    09 h
    A001'   taxes (Tue)    done     5        600 s   600 s                00 h (Tue)

Monday's figures (A001 counts in taxes with its wait and in waste with its end):

    group     tickets served no-shows waits            mean  within  services     mean  no-show
    total     5       3      1        720 2100 300 900 1005  3/4     480 600 360  480   1/4
    taxes     2       1      0        720 300          510   2/2     600          600   0/1
    waste     2       1      1        2100             2100  0/1     480          480   1/2
    parking   1       1      0        900              900   1/1     360          360   0/1
    info      1       0      0        -                -     -       -            -     -
    counter 1 1       0      1        2100             2100  0/1     -            -     1/1
    counter 2 1       1      0        300              300   1/1     600          600   0/1
    counter 3 2       2      0        720 900          810   2/2     480 360      420   0/2
    08:00     3       2      1        720 2100 300     1040  2/3     480 600      540   1/3
    09:00     2       1      0        900              900   1/1     360          360   0/1
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from common.settings import Settings
from hub import stats
from hub.app import queue_policy, seed_demo
from hub.service import QueueService
from hub.store import Store
from hub.users import ApiTokens
from hub.web.admin import chart_data

TZ = ZoneInfo("Europe/Bratislava")
MONDAY, TUESDAY = date(2026, 3, 2), date(2026, 3, 3)
TARGET_S = 15 * 60


class Clock:
    """The queue's clock, set to each step's local time."""

    def __init__(self) -> None:
        self.now = self.at(MONDAY, "07:59")

    @staticmethod
    def at(day: date, hhmm: str) -> datetime:
        hours, minutes = map(int, hhmm.split(":"))
        return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=TZ).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def web_queue(
    web_settings: Settings, open_store: Callable[[], Store], clock: Clock
) -> QueueService:
    """The demo office's queue on the test's clock, on SQLite and PostgreSQL (replaces
    the web tests' one)."""
    queue = QueueService.open(
        open_store(),
        timezone=web_settings.site.tzinfo,
        policy=queue_policy(web_settings),
        clock=clock,
    )
    seed_demo(queue)
    return queue


def play(queue: QueueService, clock: Clock) -> None:
    """The day of the module's docstring."""

    def step(day: date, hhmm: str, action: str, counter: str = "", **kw: Any) -> str | None:
        clock.now = clock.at(day, hhmm)
        if action == "issue":
            return queue.issue(counter).ticket.number
        subject = queue.counter_action(counter, action, **kw).subject
        return None if subject is None else subject.number

    m = MONDAY
    assert step(m, "08:00", "issue", "taxes") == "A001"
    assert step(m, "08:05", "issue", "waste") == "B001"
    assert step(m, "08:10", "issue", "taxes") == "A002"
    assert step(m, "08:12", "next", "1") == "A001"
    assert step(m, "08:15", "next", "2") == "A002"
    step(m, "08:16", "recall", "1")
    step(m, "08:17", "start", "1")
    step(m, "08:20", "transfer", "1", service="waste")
    step(m, "08:21", "park", "2")
    assert step(m, "08:22", "next", "3") == "A001"
    step(m, "08:30", "done", "3")
    parked = next(t.id for t in queue.engine.tickets.values() if t.number == "A002")
    assert step(m, "08:31", "next", "2", ticket_id=parked) == "A002"
    step(m, "08:35", "done", "2")
    step(m, "08:36", "pause", "2")
    assert step(m, "08:40", "next", "1") == "B001"
    for hhmm in ("08:41", "08:42", "08:43"):
        step(m, hhmm, "recall", "1")
    assert step(m, "09:05", "issue", "parking") == "C001"
    step(m, "09:10", "pause", "1")
    assert step(m, "09:20", "next", "3") == "C001"
    step(m, "09:26", "done", "3")
    assert step(m, "09:30", "issue", "info") == "D001"
    t = TUESDAY
    assert step(t, "00:30", "issue", "taxes") == "A001"
    assert step(t, "00:40", "next", "5") == "A001"
    step(t, "00:50", "done", "5")


def utc(*hhmm: str) -> list[str]:
    """Monday's UTC times as the CSV writes them (empty stays empty)."""
    return [f"2026-03-02T{t}:00+00:00" if t else "" for t in hhmm]


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def rounded(value: Any) -> Any:
    """Floats to 9 places, in nested tuples, lists and dicts, for an exact comparison."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(rounded(v) for v in value)
    return value


Figures = tuple[int, int, int, float | None, float | None, float | None, float | None]
"""tickets, served, no-shows, mean wait, mean service, share within target, no-show rate"""

MONDAY_FIGURES: dict[str, Figures] = {
    "total": (5, 3, 1, 1005.0, 480.0, 3 / 4, 1 / 4),
    "taxes": (2, 1, 0, 510.0, 600.0, 1.0, 0.0),
    "waste": (2, 1, 1, 2100.0, 480.0, 0.0, 1 / 2),
    "parking": (1, 1, 0, 900.0, 360.0, 1.0, 0.0),
    "info": (1, 0, 0, None, None, None, None),
    "1": (1, 0, 1, 2100.0, None, 0.0, 1.0),
    "2": (1, 1, 0, 300.0, 600.0, 1.0, 0.0),
    "3": (2, 2, 0, 810.0, 420.0, 1.0, 0.0),
    "08:00": (3, 2, 1, 1040.0, 540.0, 2 / 3, 1 / 3),
    "09:00": (2, 1, 0, 900.0, 360.0, 1.0, 0.0),
}

CSV_HEADER = [
    *("business_day", "number", "service", "counter", "state", "priority"),
    *("issued_at", "called_at", "finished_at", "wait_s", "service_s", "services"),
    *("slot_at", "checkin_offset_s", "remote", "checked_in_at"),
]


def csv_table(text: str) -> list[list[str]]:
    """A CSV written as a table, times as Monday's UTC hh:mm (see :func:`utc`).

    Every ticket of the day is a walk-in: its ``slot_at`` and ``checkin_offset_s`` are empty,
    it is not remote and has no ``checked_in_at``.
    """
    lines = [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]
    return [[*cells[:6], *utc(*cells[6:9]), *cells[9:], "", "", "False", ""] for cells in lines]


MONDAY_CSV = [
    CSV_HEADER,
    *csv_table(
        """
        2026-03-02 | A001 | waste   | 3 | done    |  | 07:00 | 07:12 | 07:30 | 720.0  | 480.0 | taxes waste
        2026-03-02 | B001 | waste   | 1 | no_show |  | 07:05 | 07:40 | 07:43 | 2100.0 |       | waste
        2026-03-02 | A002 | taxes   | 2 | done    |  | 07:10 | 07:15 | 07:35 | 300.0  | 600.0 | taxes
        2026-03-02 | C001 | parking | 3 | done    |  | 08:05 | 08:20 | 08:26 | 900.0  | 360.0 | parking
        2026-03-02 | D001 | info    |   | expired |  | 08:30 |       | 23:30 |        |       | info
        """  # noqa: E501
    ),
]
"""The CSV of Monday, cell by cell (``called_at`` is the first call; times in UTC)."""


def figures_of(group: stats.Group) -> Figures:
    return (
        group.tickets,
        group.served,
        group.no_shows,
        group.mean_wait_s,
        group.mean_service_s,
        group.within_target_share,
        group.no_show_rate,
    )


def test_a_day_computed_by_hand(web_queue: QueueService, clock: Clock) -> None:
    play(web_queue, clock)
    monday = web_queue.statistics(MONDAY, MONDAY, target_wait_s=TARGET_S)
    got = {"total": figures_of(monday.total)}
    for group in [*monday.per_service, *monday.per_counter, *monday.per_hour]:
        got[group.key] = figures_of(group)
    assert rounded(got) == rounded(MONDAY_FIGURES)
    assert [g.key for g in monday.per_service] == ["taxes", "waste", "parking", "info"]
    assert [g.key for g in monday.per_counter] == ["1", "2", "3"]
    assert [g.key for g in monday.per_hour] == ["08:00", "09:00"]
    assert rows(stats.to_csv(web_queue.visits(MONDAY, MONDAY))) == MONDAY_CSV


def test_the_day_boundary_is_the_local_midnight(web_queue: QueueService, clock: Clock) -> None:
    play(web_queue, clock)
    # Tuesday's A001 was issued on Monday by UTC: it is Tuesday's, in its 00 hour.
    tuesday = web_queue.statistics(TUESDAY, TUESDAY, target_wait_s=TARGET_S)
    assert figures_of(tuesday.total) == (1, 1, 0, 600.0, 600.0, 1.0, 0.0)
    assert [(g.key, g.tickets) for g in tuesday.per_hour] == [("00:00", 1)]
    assert [(g.key, g.tickets) for g in tuesday.per_counter] == [("5", 1)]
    both = web_queue.statistics(MONDAY, TUESDAY, target_wait_s=TARGET_S)
    assert rounded(figures_of(both.total)) == rounded((6, 4, 1, 924.0, 510.0, 4 / 5, 1 / 5))
    assert [(g.key, g.tickets) for g in both.per_hour] == [("00:00", 1), ("08:00", 3), ("09:00", 2)]
    # (Monday's date in its UTC times.)
    assert rows(stats.to_csv(web_queue.visits(TUESDAY, TUESDAY)))[1:] == csv_table(
        "2026-03-03 | A001 | taxes | 5 | done |  | 23:30 | 23:40 | 23:50 | 600.0 | 600.0 | taxes"
    )
    # A range of no day has no figures (and no division by zero).
    empty = web_queue.statistics(date(2026, 3, 4), date(2026, 3, 4), target_wait_s=TARGET_S)
    assert figures_of(empty.total) == (0, 0, 0, None, None, None, None)
    assert (empty.per_service, empty.per_counter, empty.per_hour) == ([], [], [])


def test_the_charts_show_the_figures(web_queue: QueueService, clock: Clock) -> None:
    play(web_queue, clock)
    monday = web_queue.statistics(MONDAY, MONDAY, target_wait_s=TARGET_S)
    names = {"taxes": "Taxes", "waste": "Waste", "parking": "Parking", "info": "Info"}
    charts = chart_data(monday, names, {"1": "One", "2": "Two", "3": "Three"})
    assert rounded(charts) == rounded(
        {
            # Minutes; info has no call yet, so no bar (not a bar of 0 min).
            "service_wait": [("Taxes", 8.5), ("Waste", 35.0), ("Parking", 15.0)],
            "service_time": [("Taxes", 10.0), ("Waste", 8.0), ("Parking", 6.0)],
            "counter_time": [("Two", 10.0), ("Three", 7.0)],
            "hour_tickets": [("08:00", 3), ("09:00", 2)],
            "hour_wait": [("08:00", 1040 / 60), ("09:00", 15.0)],
        }
    )


class Page(HTMLParser):
    """The statistics page's tables (rows of cell texts) and charts (caption: bars)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.charts: dict[str, list[str]] = {}
        self.summary: list[str] = []
        self._chart: str | None = None
        self._cell: list[str] | None = None
        self._in: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "svg":
            self._chart = dict(attrs).get("aria-label")
            self.charts[self._chart or ""] = []

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "svg":
            self._chart = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._chart is not None and self._in[-1:] == ["text"]:
            self.charts[self._chart].append(data.strip())
        elif self._in[-1:] == ["p"]:
            self.summary.append(data.strip())


def test_the_admin_page_and_csv_show_the_figures(
    admin: FlaskClient, web_queue: QueueService, clock: Clock
) -> None:
    admin.set_cookie("lang", "en")  # the English wording
    play(web_queue, clock)
    query = "?from=2026-03-02&to=2026-03-02"
    page = Page(admin.get(f"/admin/statistics{query}").get_data(as_text=True))
    assert "5 tickets · mean wait 16:45 · 75 % called within 15 min · no-shows 25 %" in (
        page.summary
    )
    citizens, per_service, per_counter, per_hour = page.tables[:4]
    # Then the notices, the ratings (per service, counter, clerk), the e-service sign-ups
    # and the clerks' figures (an admin's page): none here.
    notices, per_clerk = page.tables[4], page.tables[-1]
    assert notices == [["Channel", "Sent", "Failed", "Dropped (too late)", "Pending"], ["None"]]
    assert [table[1:] for table in page.tables[5:-1]] == [
        [],
        [],
        [],
        [["No sign-ups in this range."]],
    ]
    header = ["Tickets", "Served", "Mean wait", "Mean service", "Within 15 min", "No-shows"]
    assert citizens == [  # nobody came with a booking: the walk-ins are everyone
        ["Citizens", *header],
        ["With a booking", "0", "0", "–", "–", "–", "–"],
        ["Walk-ins", "5", "3", "16:45", "8:00", "75 %", "25 %"],
    ]
    assert per_service == [
        ["Service", *header],
        ["Miestne dane", "2", "1", "8:30", "10:00", "100 %", "0 %"],
        ["Komunálny odpad", "2", "1", "35:00", "8:00", "0 %", "50 %"],
        ["Parkovanie", "1", "1", "15:00", "6:00", "100 %", "0 %"],
        ["Všeobecné informácie", "1", "0", "–", "–", "–", "–"],
    ]
    assert per_counter == [
        ["Counter", *header],
        ["Okienko 1", "1", "0", "35:00", "–", "0 %", "100 %"],
        ["Okienko 2", "1", "1", "5:00", "10:00", "100 %", "0 %"],
        ["Okienko 3", "2", "2", "13:30", "7:00", "100 %", "0 %"],
    ]
    assert per_hour == [
        ["Hour", *header],
        ["08:00", "3", "2", "17:20", "9:00", "67 %", "33 %"],
        ["09:00", "2", "1", "15:00", "6:00", "100 %", "0 %"],
    ]
    clerk_header = ["Clerk", "Served", "Mean service time", "No-shows", "Pauses", "Paused"]
    assert per_clerk == [clerk_header, ["No clerk acted at a counter in these days."]]
    assert page.charts == {
        "Mean wait per service": [
            *("Miestne dane", "8.5 min", "Komunálny odpad", "35.0 min"),
            *("Parkovanie", "15.0 min"),
        ],
        "Mean service time per service": [
            *("Miestne dane", "10.0 min", "Komunálny odpad", "8.0 min"),
            *("Parkovanie", "6.0 min"),
        ],
        "Mean service time per counter": ["Okienko 2", "10.0 min", "Okienko 3", "7.0 min"],
        "Tickets per hour of day": ["08:00", "3", "09:00", "2"],
        "Mean wait per hour of day": ["08:00", "17.3 min", "09:00", "15.0 min"],
    }
    answer = admin.get(f"/admin/statistics.csv{query}")
    assert rows(answer.get_data(as_text=True)) == MONDAY_CSV
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="tickets-2026-03-02-2026-03-02.csv"'
    )


def test_the_api_gives_the_same_figures(
    app: Flask, client: FlaskClient, web_queue: QueueService, clock: Clock
) -> None:
    play(web_queue, clock)
    token = ApiTokens(web_queue.store).issue("bi", ("statistics",))
    answer = client.get(
        "/api/v1/statistics?from=2026-03-02&to=2026-03-02",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert (body["start"], body["end"], body["target_wait_s"]) == ("2026-03-02", "2026-03-02", 900)
    fields = (
        "tickets",
        "served",
        "no_shows",
        "mean_wait_s",
        "mean_service_s",
        "within_target_share",
        "no_show_rate",
    )
    got = {"total": tuple(body["total"][f] for f in fields)}
    for part in ("per_service", "per_counter", "per_hour"):
        for group in body[part]:
            got[group["key"]] = tuple(group[f] for f in fields)
    assert rounded(got) == rounded(MONDAY_FIGURES)
