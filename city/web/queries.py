"""The city web's own reads of the city's tables, each one indexed query.

For what :class:`~city.store.CityStore` has no method for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import Engine, and_, select

from city.tables import metadata

_progress: Final = metadata.tables["branch_progress"]
_events: Final = metadata.tables["branch_events"]


@dataclass(frozen=True, slots=True)
class Held:
    """How far the city holds a branch's history, and how late its newest row came."""

    site: str
    seq: int
    """The highest sequence stored with none missing before it."""
    at: datetime | None
    """When that row happened at the branch."""
    received_at: datetime | None
    """When the city stored it."""

    @property
    def lag_s(self) -> float | None:
        """How long the newest row took to reach the city's database."""
        if self.at is None or self.received_at is None:
            return None
        return max(0.0, (self.received_at - self.at).total_seconds())


def held(engine: Engine) -> dict[str, Held]:
    """Per branch that sent anything: its progress and newest row (by primary key)."""
    query = select(
        _progress.c.site, _progress.c.seq, _events.c.at, _events.c.received_at
    ).select_from(
        _progress.outerjoin(
            _events, and_(_events.c.site == _progress.c.site, _events.c.seq == _progress.c.seq)
        )
    )
    with engine.connect() as conn:
        return {
            row.site: Held(row.site, row.seq, row.at, row.received_at)
            for row in conn.execute(query)
        }
