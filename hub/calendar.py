"""The office calendar: when a service is open on a given day and time.

Weekly opening hours (:class:`~hub.model.OpeningHours`, per service) are narrowed by the
office's public holidays and by the closures the admin enters (a whole day, or part of
one). Everything here is plain data with no I/O: the engine asks it whether a ticket
may be issued and when the current opening closes (the cut-off), the booking side
which slots a day has, and the pages when a closed service opens next.
:func:`public_holidays` reads a country's holidays from the ``holidays`` package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final

import holidays

from hub.model import OpeningHours

Span = tuple[time, time]
"""An open interval of one day, local time: ``start <= t < end``."""

NEXT_OPENING_HORIZON_DAYS = 60
"""How far ahead :meth:`OfficeCalendar.next_opening` looks before it gives up."""

HOLIDAY_LANGUAGES: Final = {"sk": "sk", "cs": "cs", "uk": "uk", "en": "en_US"}
"""The ``holidays`` package's language for each of the citizens' languages."""


def public_holidays(country: str, years: Iterable[int], lang: str = "sk") -> dict[date, str]:
    """The public holidays of ``country`` (``SK``, ``CZ``, ``UA``) in ``years``.

    They are named in ``lang`` where the package has that language (else in its own).
    Days the law makes no holiday are none: Ukraine has kept none since martial law
    began in 2022.
    """
    wanted = HOLIDAY_LANGUAGES.get(lang)
    found = holidays.country_holidays(country, years=list(years))
    if wanted is not None and wanted in found.supported_languages:
        found = holidays.country_holidays(country, years=list(years), language=wanted)
    return dict(sorted(found.items()))


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
    id: str = ""
    """The stored closure's id (empty for one not stored)."""

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
    """The office's public holidays (closed all day, but for services open always), with
    their names."""
    closures: tuple[Closure, ...] = ()
    """The admin's closures."""

    def open_spans(self, hours: OpeningHours, day: date, service: str | None = None) -> list[Span]:
        """The local intervals of ``day`` in which a service with ``hours`` is open.

        A service open always runs round the clock: public holidays do not close it,
        only the admin's closures do.
        """
        if hours.always:
            spans = [(time.min, time.max)]
        elif day in self.holidays:
            return []
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

    def closed_for(
        self, hours: OpeningHours, local: datetime, service: str | None = None
    ) -> str | None:
        """Why the calendar closes a service with ``hours`` at ``local``, in words.

        The holiday's name, or the reason of the closure that covers ``local``;
        ``None`` when nothing in the calendar closes it then (or the closure gives
        no reason).
        """
        day = local.date()
        if not hours.always and day in self.holidays:
            return self.holidays[day]
        now = local.time().replace(tzinfo=None)
        for closure in self.closures:
            start, end = closure.span()
            if closure.day == day and closure.covers(service) and start <= now < end:
                return closure.reason or None
        return None

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

    def closing(
        self, hours: OpeningHours, local: datetime, service: str | None = None
    ) -> datetime | None:
        """When the opening that ``local`` falls in ends (local time, in ``local``'s zone).

        A span that runs to midnight and goes on at midnight the next day is one
        opening. ``None`` when the service is closed at ``local``, or open without a
        break through :data:`NEXT_OPENING_HORIZON_DAYS` (a service open always).
        """
        now = local.time().replace(tzinfo=None)
        day = local.date()
        end = next(
            (e for s, e in self.open_spans(hours, day, service) if s <= now < e),
            None,
        )
        for _ in range(NEXT_OPENING_HORIZON_DAYS):
            if end is None or end != time.max:
                break
            day += timedelta(days=1)
            end = next((e for s, e in self.open_spans(hours, day, service) if s == time.min), None)
            if end is None:
                return datetime.combine(day, time.min, tzinfo=local.tzinfo)
        else:
            return None
        if end is None:
            return None
        return datetime.combine(day, end, tzinfo=local.tzinfo)


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
