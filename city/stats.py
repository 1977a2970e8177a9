"""The city's statistics: a branch's figures (:mod:`hub.stats`), from the branches' logs.

The city has no ``tickets`` table: it has every branch's audit log, row for row
(``branch_events``), each row with its ticket's number, business day and priority.
A ticket's :class:`~hub.stats.Visit` is rebuilt from its rows with the hub's own
:class:`~hub.stats.Route` and :func:`~hub.stats.visit`, and the figures are the hub's
:func:`~hub.stats.aggregate` of them, so a branch's figures at the city are the
figures its own admin page shows. Across branches the figures are grouped per
branch (where a branch's page groups per counter); with one branch chosen, per
counter as at the branch.

What the city cannot know from the log: a booked ticket's slot (a check-in counts
as a walk-in, and there is no punctuality) and bookings nobody checked in; the
branch's own pages have those.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from city.tables import metadata
from hub import stats
from hub.model import Action, TicketState

_events: Final = metadata.tables["branch_events"]

FINAL_STATES: Final = frozenset(
    {TicketState.DONE.value, TicketState.NO_SHOW.value, TicketState.EXPIRED.value}
)
"""A ticket's state once its visit is over: its row's time is the visit's end."""

CSV_COLUMNS: Final = ("branch", *stats.CSV_COLUMNS)
"""The city's ticket CSV: the branch's, with the branch first."""

FETCH_ROWS: Final = 2000
"""Rows read from the database at a time (the range's rows are streamed, never held)."""


@dataclass(frozen=True, slots=True)
class BranchVisit:
    """One ticket of a branch: the branch's site and its :class:`~hub.stats.Visit`."""

    site: str
    visit: stats.Visit


@dataclass
class CityStatistics:
    """The figures of a range of business days, of every branch or of one."""

    figures: stats.Statistics
    """The branch's figures (per service, per hour…) of every ticket counted."""
    per_branch: list[stats.Group]
    """The same figures per branch, by site."""
    branch: str | None
    """The one branch counted, or ``None`` for all of them."""

    @property
    def per_counter(self) -> list[stats.Group]:
        """Per counter when one branch is counted (else empty).

        Across branches, counters' ids mean nothing together.
        """
        return self.figures.per_counter if self.branch is not None else []


def visits(
    engine: Engine, start: date, end: date, *, sites: Iterable[str] | None = None
) -> Iterator[BranchVisit]:
    """Every ticket of business days ``start`` … ``end`` of ``sites`` (default: every branch).

    A ticket whose issue the city does not hold (its branch joined with older rows
    pruned) is left out. In the order of branch and ticket, not of time.
    """
    e = _events
    query = (
        select(
            e.c.site,
            e.c.ticket_id,
            e.c.at,
            e.c.action,
            e.c.service,
            e.c.counter_id,
            e.c.to_state,
            e.c.detail,
            e.c.number,
            e.c.business_day,
            e.c.priority,
        )
        .where(
            e.c.business_day >= start,
            e.c.business_day <= end,
            e.c.ticket_id.is_not(None),
        )
        .order_by(e.c.site, e.c.ticket_id, e.c.seq)
    )
    if sites is not None:
        query = query.where(e.c.site.in_(list(sites)))
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=FETCH_ROWS).execute(query)
        for _ticket, rows in groupby(result, key=lambda row: (row.site, row.ticket_id)):
            found = _visit(list(rows))
            if found is not None:
                yield found


def _visit(trail: list[Any]) -> BranchVisit | None:
    """A ticket's visit from its rows (in the branch's order), or ``None`` without its issue."""
    issue = trail[0]
    if issue.action != Action.ISSUE:
        return None
    route = stats.Route()
    counter: str | None = None
    finished_at: datetime | None = None
    checked_in_at: datetime | None = None
    for row in trail:
        route.add(row.action, row.at, row.service)
        counter = row.counter_id or counter
        if row.to_state in FINAL_STATES:
            finished_at = row.at
        if row.action == Action.CHECK_IN:
            checked_in_at = checked_in_at or row.at
    last = trail[-1]
    detail = issue.detail if isinstance(issue.detail, dict) else {}
    return BranchVisit(
        issue.site,
        stats.visit(
            route,
            business_day=issue.business_day,
            number=issue.number or "",
            service=last.service or issue.service or "",
            counter=counter,
            state=last.to_state or "",
            priority=last.priority,
            issued_at=issue.at,
            finished_at=finished_at if last.to_state in FINAL_STATES else None,
            remote=detail.get("remote") is True,
            checked_in_at=checked_in_at,
        ),
    )


def compute(
    engine: Engine,
    start: date,
    end: date,
    *,
    timezone: ZoneInfo,
    target_wait_s: int,
    sites: Iterable[str] | None = None,
    branch: str | None = None,
) -> CityStatistics:
    """The figures of business days ``start`` … ``end``, hours in ``timezone``.

    Of ``branch`` if given, else of every site of ``sites`` (default: every branch).
    """
    chosen = [branch] if branch is not None else sites
    per_branch: dict[str, stats.Group] = {}

    def counted(rows: Iterable[BranchVisit]) -> Iterator[stats.Visit]:
        for row in rows:
            group = per_branch.setdefault(row.site, stats.Group(row.site))
            stats.count(group, row.visit, target_wait_s)
            yield row.visit

    figures = stats.aggregate(
        counted(visits(engine, start, end, sites=chosen)),
        start,
        end,
        timezone=timezone,
        target_wait_s=target_wait_s,
    )
    return CityStatistics(
        figures=figures,
        per_branch=sorted(per_branch.values(), key=lambda group: group.key),
        branch=branch,
    )


def to_csv(rows: Iterable[BranchVisit]) -> str:
    """The tickets as CSV: :data:`CSV_COLUMNS`, in order of issue (timestamps ISO 8601 UTC)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    ordered = sorted(rows, key=lambda row: (row.visit.issued_at, row.site, row.visit.number))
    writer.writerows([row.site, *stats.csv_values(row.visit)] for row in ordered)
    return out.getvalue()
