"""Citizens' ratings of their visits: one rating (1-5, an optional comment) per ticket.

A citizen rates a visit on the my-ticket page once it has ended with Done, within
``[web] rating_window_h`` of its end; a counter's rating device may rate the
ticket that counter just finished. A ticket is rated once: a second rating is
refused (``already_rated``), whoever sends it. Each rating keeps who served the
ticket as the audit trail tells it (the actor of the ticket's Done: ``web:<user>``
for the web panel, the device for a button panel), so that the statistics can
group ratings per service, counter and clerk. Ratings and their comments are part
of the queue's history and are pruned with it (:mod:`hub.retention`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import Row, insert, select
from sqlalchemy.exc import IntegrityError

from common.errors import PoradovnikError
from hub.model import Action, TicketState
from hub.store import Store, metadata

RATINGS: Final = (1, 2, 3, 4, 5)
"""The marks a visit can get: 1 (bad) … 5 (very good)."""

MAX_COMMENT: Final = 500
"""The longest comment kept (the store's column)."""

Source = Literal["portal", "counter"]

_ratings: Final = metadata.tables["ratings"]
_tickets: Final = metadata.tables["tickets"]
_events: Final = metadata.tables["events"]

CSV_COLUMNS: Final = (
    "business_day",
    "number",
    "service",
    "counter",
    "clerk",
    "rating",
    "comment",
    "source",
    "at",
)


class FeedbackError(PoradovnikError):
    """A rating that cannot be taken, with a stable ``code``.

    ``unknown_ticket``, ``no_ticket`` (no visit ended at the counter), ``not_done``
    (the visit has not ended with Done),
    ``too_late`` (the window has passed), ``already_rated``, ``invalid``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Rating:
    """One stored rating, with the visit it rates."""

    ticket_id: str
    business_day: date
    number: str
    service: str
    counter: str | None
    clerk: str | None
    rating: int
    comment: str | None
    source: str
    at: datetime


@dataclass
class RatingGroup:
    """The ratings of one service, counter or clerk."""

    key: str
    counts: dict[int, int] = field(default_factory=lambda: dict.fromkeys(RATINGS, 0))
    """How many visits got each mark."""

    @property
    def total(self) -> int:
        """How many visits were rated."""
        return sum(self.counts.values())

    @property
    def mean(self) -> float | None:
        """The mean mark (``None``: no rating)."""
        total = self.total
        return sum(mark * n for mark, n in self.counts.items()) / total if total else None


@dataclass
class RatingSummary:
    """The ratings of a range of business days, grouped three ways."""

    total: RatingGroup
    per_service: list[RatingGroup]
    per_counter: list[RatingGroup]
    per_clerk: list[RatingGroup]


class Feedback:
    """Takes citizens' ratings and reads them back for the statistics."""

    def __init__(self, store: Store, *, window: timedelta, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.window = window
        """How long after its end a visit may be rated."""
        self.clock = clock

    def check(self, ticket_id: str) -> str:
        """Ticket ``ticket_id``'s number if it may be rated now, else :class:`FeedbackError`."""
        with self.store.db.connect() as conn:
            ticket = conn.execute(
                select(_tickets.c.number, _tickets.c.state, _tickets.c.finished_at).where(
                    _tickets.c.id == ticket_id
                )
            ).first()
            rated = conn.execute(
                select(_ratings.c.ticket_id).where(_ratings.c.ticket_id == ticket_id)
            ).first()
        if ticket is None:
            raise FeedbackError("unknown_ticket", "there is no such ticket")
        if rated is not None:
            raise FeedbackError("already_rated", f"{ticket.number} is already rated")
        if ticket.state != TicketState.DONE.value or ticket.finished_at is None:
            raise FeedbackError("not_done", f"{ticket.number} has not ended with Done")
        if self.clock() - ticket.finished_at > self.window:
            raise FeedbackError("too_late", f"the time to rate {ticket.number} has passed")
        return str(ticket.number)

    def rate(
        self, ticket_id: str, rating: int, comment: str | None = None, *, source: Source
    ) -> Rating:
        """Store the rating of ticket ``ticket_id``; :class:`FeedbackError` if refused."""
        if isinstance(rating, bool) or rating not in RATINGS:
            raise FeedbackError("invalid", "a rating is a whole number from 1 to 5")
        comment = (comment or "").strip() or None
        if comment is not None and len(comment) > MAX_COMMENT:
            raise FeedbackError("invalid", f"a comment has at most {MAX_COMMENT} characters")
        self.check(ticket_id)
        now = self.clock()
        with self.store.db.connect() as conn:
            ticket = conn.execute(select(_tickets).where(_tickets.c.id == ticket_id)).one()
            clerk = conn.execute(
                select(_events.c.actor)
                .where(_events.c.ticket_id == ticket_id, _events.c.action == Action.DONE)
                .order_by(_events.c.id.desc())
                .limit(1)
            ).scalar()
        stored = Rating(
            ticket_id=ticket_id,
            business_day=ticket.business_day,
            number=ticket.number,
            service=ticket.service,
            counter=ticket.counter_id,
            clerk=clerk,
            rating=rating,
            comment=comment,
            source=source,
            at=now,
        )
        try:
            with self.store.transaction() as conn:
                conn.execute(insert(_ratings).values(_values(stored)))
        except IntegrityError:
            raise FeedbackError("already_rated", f"{ticket.number} is already rated") from None
        return stored

    def rate_last(self, counter: str, rating: int, *, day: date) -> Rating:
        """Rate the newest ticket finished with Done at ``counter`` on business day ``day``.

        What a counter's rating buttons do: the citizen rates the visit that has just
        ended there. :class:`FeedbackError` ``no_ticket`` if none ended there that day.
        """
        with self.store.db.connect() as conn:
            ticket_id = conn.execute(
                select(_tickets.c.id)
                .where(
                    _tickets.c.business_day == day,
                    _tickets.c.counter_id == counter,
                    _tickets.c.state == TicketState.DONE.value,
                )
                .order_by(_tickets.c.finished_at.desc())
                .limit(1)
            ).scalar()
        if ticket_id is None:
            raise FeedbackError("no_ticket", f"no visit ended at counter {counter} today")
        return self.rate(ticket_id, rating, source="counter")

    def ratings(self, start: date, end: date) -> list[Rating]:
        """Every rating of visits on business days ``start`` … ``end``, newest first."""
        query = (
            select(_ratings)
            .where(_ratings.c.business_day >= start, _ratings.c.business_day <= end)
            .order_by(_ratings.c.at.desc())
        )
        with self.store.db.connect() as conn:
            return [_rating(row) for row in conn.execute(query)]

    def summary(self, start: date, end: date) -> RatingSummary:
        """The ratings of business days ``start`` … ``end`` per service, counter and clerk."""
        total = RatingGroup("total")
        services: dict[str, RatingGroup] = {}
        counters: dict[str, RatingGroup] = {}
        clerks: dict[str, RatingGroup] = {}
        for rating in self.ratings(start, end):
            groups = [total, services.setdefault(rating.service, RatingGroup(rating.service))]
            if rating.counter is not None:
                groups.append(counters.setdefault(rating.counter, RatingGroup(rating.counter)))
            if rating.clerk is not None:
                groups.append(clerks.setdefault(rating.clerk, RatingGroup(rating.clerk)))
            for group in groups:
                group.counts[rating.rating] += 1

        def ordered(groups: dict[str, RatingGroup]) -> list[RatingGroup]:
            return [groups[key] for key in sorted(groups)]

        return RatingSummary(total, ordered(services), ordered(counters), ordered(clerks))


def _values(rating: Rating) -> dict[str, object]:
    return {
        "ticket_id": rating.ticket_id,
        "business_day": rating.business_day,
        "number": rating.number,
        "service": rating.service,
        "counter_id": rating.counter,
        "clerk": rating.clerk,
        "rating": rating.rating,
        "comment": rating.comment,
        "source": rating.source,
        "at": rating.at,
    }


def _rating(row: Row[Any]) -> Rating:
    return Rating(
        ticket_id=row.ticket_id,
        business_day=row.business_day,
        number=row.number,
        service=row.service,
        counter=row.counter_id,
        clerk=row.clerk,
        rating=row.rating,
        comment=row.comment,
        source=row.source,
        at=row.at,
    )


def cell(text: str) -> str:
    """Free text for a CSV cell that a spreadsheet will not run as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(ratings: Iterable[Rating]) -> str:
    """The ratings as CSV (one header line, timestamps in ISO 8601 UTC)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in ratings:
        writer.writerow(
            [
                r.business_day.isoformat(),
                r.number,
                r.service,
                r.counter or "",
                r.clerk or "",
                r.rating,
                cell(r.comment or ""),
                r.source,
                r.at.isoformat(),
            ]
        )
    return out.getvalue()
