"""The city's service catalogue, applied at a branch as an admin's change would be.

A branch with ``[uplink] catalogue = true`` takes the services the city defines:
their names, ticket prefixes and opening hours (:class:`~sync_agent.city_protocol.Catalogue`).
:class:`CatalogueApplier` adds the services it lists and updates those it already
has, through the service layer (so kiosks and displays hear of it at once), and
writes each change to the admins' audit with the actor ``city``.

The branch's admin still has the last word. ``city_services`` keeps, for each
service the city manages, every field as the city last set it; a field whose value
now differs was changed by the branch's admin, and is kept as it is (reported back
to the city as ``kept_local``). A service the city cannot place here (its prefix is
another service's, its hours make no sense) is refused with a reason, and the rest is
applied. Services the catalogue does not list are left alone.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, time
from itertools import pairwise
from typing import Any, Final

from sqlalchemy import select

from common.errors import PoradovnikError
from hub.audit import AdminAudit, changes
from hub.model import OpeningHours, Service
from hub.service import QueueError, QueueService
from hub.store import hours_to_json
from hub.store.tables import CITY_SERVICES
from sync_agent.city_protocol import Catalogue, CatalogueApplied, CatalogueService

__all__ = ["CITY_ACTOR", "CatalogueApplier", "catalogue_hours"]

log = logging.getLogger(__name__)

CITY_ACTOR: Final = "city"
"""Who the admins' audit names for the catalogue's changes."""

_MAX_SPANS: Final = 8
"""Most opening spans a day may have."""


def catalogue_hours(data: Mapping[str, Any]) -> OpeningHours:
    """Opening hours from the catalogue's JSON (as ``hours_to_json`` writes them).

    Raises :class:`ValueError` for anything else: a day outside 0–6, a span that
    ends before it starts, spans that overlap, more than :data:`_MAX_SPANS` a day.
    """
    always = data.get("always", True)
    days = data.get("days", {})
    if (
        not isinstance(always, bool)
        or not isinstance(days, Mapping)
        or set(data)
        - {
            "always",
            "days",
        }
    ):
        raise ValueError('hours must be {"always": true|false, "days": {...}}')
    parsed: dict[int, tuple[tuple[time, time], ...]] = {}
    for day, spans in days.items():
        if day not in {str(d) for d in range(7)}:
            raise ValueError(f"day {str(day)[:8]!r} is not 0 (Monday) to 6 (Sunday)")
        if not isinstance(spans, list) or len(spans) > _MAX_SPANS:
            raise ValueError(f"day {day}: at most {_MAX_SPANS} spans, as a list")
        times = []
        for span in spans:
            if not (
                isinstance(span, list) and len(span) == 2 and all(isinstance(t, str) for t in span)
            ):
                raise ValueError(f'day {day}: a span is two times such as ["08:00", "12:00"]')
            start, end = time.fromisoformat(span[0]), time.fromisoformat(span[1])
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError(f"day {day}: times are local, without a zone")
            if end <= start:
                raise ValueError(f"day {day}: a span ends before it starts")
            times.append((start, end))
        times.sort()
        if any(later[0] < earlier[1] for earlier, later in pairwise(times)):
            raise ValueError(f"day {day}: spans overlap")
        parsed[int(day)] = tuple(times)
    return OpeningHours(days=parsed, always=always)


def _fields(prefix: str, names: Mapping[Any, str], hours: OpeningHours) -> dict[str, Any]:
    """The fields the city manages, by name, as ``city_services`` keeps them."""
    return {
        "prefix": prefix,
        **{f"name_{lang}": name for lang, name in sorted(names.items())},
        "hours": hours_to_json(hours),
    }


def _audit_view(service: Service) -> dict[str, object]:
    """What the admins' audit compares of a service the city manages."""
    view: dict[str, object] = _fields(service.prefix, service.names, service.hours)
    view["hours"] = service.hours.describe()
    return view


class CatalogueApplier:
    """Applies the city's catalogue to this branch's services (see the module)."""

    def __init__(
        self, queue: QueueService, audit: AdminAudit, *, site: str, clock: Callable[[], datetime]
    ) -> None:
        self.queue = queue
        self.audit = audit
        self.site = site
        self.clock = clock

    def apply(self, catalogue: Catalogue) -> CatalogueApplied:
        """Add or update every service of ``catalogue``; what was kept and refused."""
        kept: list[str] = []
        refused: list[str] = []
        for offered in catalogue.services:
            try:
                kept += self._apply_one(offered)
            except (QueueError, PoradovnikError, ValueError) as exc:
                reason = f"{offered.code}: {exc}"[:400]
                log.warning("refused the city's service %s", reason)
                refused.append(reason)
        log.info(
            "applied the city's catalogue %d: %d services, %d fields kept, %d refused",
            catalogue.version,
            len(catalogue.services),
            len(kept),
            len(refused),
        )
        return CatalogueApplied(
            site=self.site,
            version=catalogue.version,
            at=self.clock(),
            kept_local=kept[:256],
            refused=refused,
        )

    def _apply_one(self, offered: CatalogueService) -> list[str]:
        """Apply one service; the ``code.field`` names kept as the branch set them."""
        city = _fields(offered.prefix, offered.names, catalogue_hours(offered.hours))
        current = self.queue.service(offered.code)
        last = self._applied(offered.code)
        kept: list[str] = []
        wanted = dict(city)
        if current is not None and last is not None:
            local = _fields(current.prefix, current.names, current.hours)
            for name in city:
                if name in last and local.get(name) != last[name]:
                    wanted[name] = local.get(name)
                    kept.append(f"{offered.code}.{name}")
        names = dict(current.names) if current is not None else {}
        for name, value in wanted.items():
            if name.startswith("name_") and value is not None:
                names[name.removeprefix("name_")] = value
        hours = catalogue_hours(wanted["hours"])
        if current is None:
            edited = Service(code=offered.code, prefix=wanted["prefix"], names=names, hours=hours)
        else:
            edited = dataclasses.replace(current, prefix=wanted["prefix"], names=names, hours=hours)
        if edited != current:
            self.queue.save_service(edited)
            self.audit.record(
                CITY_ACTOR,
                "service",
                offered.code,
                "create" if current is None else "update",
                changes(None if current is None else _audit_view(current), _audit_view(edited)),
            )
        self._remember(offered.code, city, kept)
        return kept

    def _applied(self, code: str) -> dict[str, Any] | None:
        with self.queue.store.db.connect() as conn:
            row = conn.execute(
                select(CITY_SERVICES.c.applied).where(CITY_SERVICES.c.code == code)
            ).scalar()
        return dict(row) if isinstance(row, Mapping) else None

    def _remember(self, code: str, applied: dict[str, Any], kept: list[str]) -> None:
        self.queue.store.put(
            CITY_SERVICES, {"code": code}, {"applied": applied, "kept_local": kept}
        )
