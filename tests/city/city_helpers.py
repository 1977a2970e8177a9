"""What the city's tests share: fresh databases, branches' batches as a branch sends them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from sync_agent.city_protocol import HistoryBatch, HistoryEvent

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """Create an empty database on the PostgreSQL ``server``; its URL. Dropped on leaving."""
    name = f"city_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def event(seq: int) -> HistoryEvent:
    """Row ``seq`` of a branch's audit log: the issue of ticket ``A<seq>``."""
    return HistoryEvent(
        seq=seq,
        at=T0 + timedelta(seconds=seq % 86_400),
        action="issue",
        actor="kiosk-1",
        ticket_id=f"t{seq % 10**9}",
        service="a",
        to_state="waiting",
        detail={"n": seq},
        number=f"A{seq % 1000:03d}",
        business_day=date(2026, 12, 7),
    )


def batch(site: str, first: int, last: int, *, first_available: int = 1) -> HistoryBatch:
    """A batch of site ``site`` with the rows ``first`` to ``last``."""
    return HistoryBatch(
        site=site,
        first_available=first_available,
        events=[event(seq) for seq in range(first, last + 1)],
    )
