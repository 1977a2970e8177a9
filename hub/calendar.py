"""The office calendar: when a service is open on a given day and time.

Weekly opening hours (:class:`~hub.model.OpeningHours`, per service) are narrowed by the
office's public holidays and by the closures the admin enters (a whole day, or part of
one). Everything here is plain data with no I/O: the engine asks it whether a ticket
may be issued, the booking side which slots a day has, and the pages when a closed
service opens next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from hub.model import OpeningHours

Span = tuple[time, time]
"""An open interval of one day, local time: ``start <= t < end``."""

NEXT_OPENING_HORIZON_DAYS = 60
"""How far ahead :meth:`OfficeCalendar.next_opening` looks before it gives up."""


@dataclass(frozen=True, slots=True)
class Closure:
    """A day, or part of one, when the office (or some of its services) does not serve."""

    day: date
    """The site-local day of the closure."""
    start: time | None = None
    """When the closure begins; ``None`` with ``end`` ``None`` closes the whole day."""
    end: time | None = None
    """When the closure ends (exclusive); ``None`` means the end of the day."""
    reason: str = ""
    """What the pages say, e.g. ``Staff training``."""
    services: tuple[str, ...] = ()
    """The services closed; empty closes the whole office."""

    def covers(self, service: str | None) -> bool:
        """Whether the closure applies to ``service`` (``None``: the office as a whole)."""
        return not self.services or (service is not None and service in self.services)

    def span(self) -> Span:
        """The closed part of the day."""
        return (self.start or time.min, self.end or time.max)


@dataclass(frozen=True, slots=True)
class OfficeCalendar:
    """Public holidays and the admin's closures, applied to a service's weekly hours."""

    holidays: Mapping[date, str] = field(default_factory=dict)
    """The office's public holidays (closed all day), with their names."""
    closures: tuple[Closure, ...] = ()
    """The admin's closures."""

    def open_spans(self, hours: OpeningHours, day: date, service: str | None = None) -> list[Span]:
        """The local intervals of ``day`` in which a service with ``hours`` is open."""
        if day in self.holidays:
            return []
        if hours.always:
            spans = [(time.min, time.max)]
        else:
            spans = sorted(hours.days.get(day.weekday(), ()))
        for closure in self.closures:
            if closure.day == day and closure.covers(service):
                spans = _subtract(spans, closure.span())
        return spans

    def is_open(self, hours: OpeningHours, local: datetime, service: str | None = None) -> bool:
        """Whether a service with ``hours`` is open at ``local`` (a time in the site's zone)."""
        now = local.time().replace(tzinfo=None)
        return any(
            start <= now < end for start, end in self.open_spans(hours, local.date(), service)
        )

    def next_opening(
        self, hours: OpeningHours, local: datetime, service: str | None = None
    ) -> datetime | None:
        """The next local time at or after ``local`` at which the service opens.

        ``local`` itself when it is open now; ``None`` when it does not open within
        :data:`NEXT_OPENING_HORIZON_DAYS`.
        """
        now = local.time().replace(tzinfo=None)
        for offset in range(NEXT_OPENING_HORIZON_DAYS + 1):
            day = local.date() + timedelta(days=offset)
            for start, end in self.open_spans(hours, day, service):
                if offset == 0 and end <= now:
                    continue
                begin = max(start, now) if offset == 0 else start
                return datetime.combine(day, begin, tzinfo=local.tzinfo)
        return None


def _subtract(spans: list[Span], closed: Span) -> list[Span]:
    """``spans`` without the ``closed`` interval."""
    left: list[Span] = []
    for start, end in spans:
        if closed[1] <= start or end <= closed[0]:
            left.append((start, end))
            continue
        if start < closed[0]:
            left.append((start, closed[0]))
        if closed[1] < end:
            left.append((closed[1], end))
    return left
