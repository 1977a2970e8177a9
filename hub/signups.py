"""In-person e-service sign-up: citizens come to a desk to be registered for e-services.

The admin marks services as e-service registration desks and lists the e-services a
clerk can sign a citizen up for (both kept in ``site_config``, key
``eservice_signup``). When a clerk finishes a ticket of a desk on the web panel,
they tick the e-services the citizen was signed up for; each is stored per ticket
(``eservice_signups``) and counted per e-service and month in the statistics. The
records carry no personal data beyond the clerk and are pruned with the queue's
history (:mod:`hub.retention`).
"""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from sqlalchemy import delete, insert, select

from common.errors import PoradovnikError
from hub.feedback import cell
from hub.store import Store, metadata

MAX_ESERVICES: Final = 30
"""The most e-services the admin may list."""

MAX_NAME: Final = 80
"""The longest e-service name (the store's column)."""

_KEY: Final = "eservice_signup"
_config: Final = metadata.tables["site_config"]
_signups: Final = metadata.tables["eservice_signups"]
_tickets: Final = metadata.tables["tickets"]


class SignUpError(PoradovnikError):
    """A set-up or sign-up that cannot be stored."""


@dataclass(frozen=True, slots=True)
class SignUpSetup:
    """Which services are registration desks, and which e-services they sign people up for."""

    desks: tuple[str, ...] = ()
    """Codes of the services that are e-service registration desks."""
    eservices: tuple[str, ...] = ()
    """The e-services a clerk can tick, in the admin's order."""

    def checked(self) -> SignUpSetup:
        """Return itself if every value is usable, else raise :class:`SignUpError`."""
        if len(self.eservices) > MAX_ESERVICES:
            raise SignUpError(
                f"list at most {MAX_ESERVICES} e-services",
                code="too_many_eservices",
                params={"max": MAX_ESERVICES},
            )
        if any(not 1 <= len(name) <= MAX_NAME or name != name.strip() for name in self.eservices):
            raise SignUpError(
                f"an e-service name has 1-{MAX_NAME} characters",
                code="invalid_eservice_name",
                params={"max": MAX_NAME},
            )
        if len(set(self.eservices)) != len(self.eservices):
            raise SignUpError("an e-service is listed twice", code="duplicate_eservice")
        return self


@dataclass(frozen=True, slots=True)
class MonthCount:
    """How many sign-ups one e-service had in one month."""

    month: str
    """``YYYY-MM``, by the visit's business day."""
    eservice: str
    count: int


class SignUps:
    """Keeps the desks' set-up and records the sign-ups."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cached: SignUpSetup | None = None

    def setup(self) -> SignUpSetup:
        """The current set-up (cached; saving refreshes it)."""
        cached = self._cached
        if cached is not None:
            return cached
        with self.store.db.connect() as conn:
            value = conn.execute(select(_config.c.value).where(_config.c.key == _KEY)).scalar()
        found = SignUpSetup()
        if isinstance(value, dict):
            found = SignUpSetup(
                desks=tuple(str(v) for v in value.get("desks", ())),
                eservices=tuple(str(v) for v in value.get("eservices", ())),
            )
        self._cached = found
        return found

    def save(self, setup: SignUpSetup) -> None:
        """Check and store a new set-up."""
        value = {"desks": list(setup.checked().desks), "eservices": list(setup.eservices)}
        with self._lock, self.store.transaction() as conn:
            conn.execute(delete(_config).where(_config.c.key == _KEY))
            conn.execute(insert(_config).values(key=_KEY, value=value))
            self._cached = None

    def set_desk(self, service: str, desk: bool) -> None:
        """Mark service ``service`` as a registration desk, or not."""
        current = self.setup()
        desks = [code for code in current.desks if code != service] + ([service] if desk else [])
        self.save(SignUpSetup(desks=tuple(desks), eservices=current.eservices))

    def is_desk(self, service: str) -> bool:
        """Whether service ``service`` is an e-service registration desk."""
        return service in self.setup().desks

    def check(self, eservices: Iterable[str]) -> tuple[str, ...]:
        """The ticked e-services, each once, if all are listed; else :class:`SignUpError`."""
        ticked = tuple(dict.fromkeys(eservices))
        listed = self.setup().eservices
        if any(name not in listed for name in ticked):
            raise SignUpError("tick only the e-services listed", code="unknown_eservice")
        return ticked

    def record(
        self, ticket_id: str, eservices: Iterable[str], *, clerk: str | None, at: datetime
    ) -> int:
        """Store that the citizen of ticket ``ticket_id`` was signed up for ``eservices``.

        Sign-ups already recorded for the ticket are kept; how many were added.
        """
        ticked = self.check(eservices)
        if not ticked:
            return 0
        with self.store.db.connect() as conn:
            ticket = conn.execute(
                select(_tickets.c.business_day, _tickets.c.service).where(
                    _tickets.c.id == ticket_id
                )
            ).first()
        if ticket is None:
            raise SignUpError("there is no such ticket", code="unknown_ticket")
        with self.store.transaction() as conn:
            known = set(
                conn.execute(
                    select(_signups.c.eservice).where(_signups.c.ticket_id == ticket_id)
                ).scalars()
            )
            new = [name for name in ticked if name not in known]
            for name in new:
                conn.execute(
                    insert(_signups).values(
                        ticket_id=ticket_id,
                        eservice=name,
                        business_day=ticket.business_day,
                        service=ticket.service,
                        clerk=clerk,
                        at=at,
                    )
                )
        return len(new)

    def per_month(self, start: date, end: date) -> list[MonthCount]:
        """Sign-ups per month and e-service on business days ``start`` … ``end``."""
        query = select(_signups.c.business_day, _signups.c.eservice).where(
            _signups.c.business_day >= start, _signups.c.business_day <= end
        )
        with self.store.db.connect() as conn:
            counts = Counter((f"{day:%Y-%m}", eservice) for day, eservice in conn.execute(query))
        return [MonthCount(month, name, n) for (month, name), n in sorted(counts.items())]


def to_csv(rows: Iterable[MonthCount]) -> str:
    """Sign-ups per month and e-service as CSV."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("month", "eservice", "signups"))
    for row in rows:
        writer.writerow((row.month, cell(row.eservice), row.count))
    return out.getvalue()
