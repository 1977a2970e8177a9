"""Appointments for tests: built in memory, or written straight to the store's table."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from hub.model import Appointment, AppointmentState, OpeningHours, RemoteRules
from hub.service import QueueService
from hub.store import Store
from hub.store.tables import APPOINTMENTS

_codes = count(10_000_001)


def make_appointment(
    service: str,
    starts_at: datetime,
    *,
    state: AppointmentState = AppointmentState.BOOKED,
    name: str = "Jana N.",
    lang: str = "sk",
    code: str | None = None,
) -> Appointment:
    """A 15-minute booking of ``service`` from ``starts_at``, with a fresh code."""
    code = code or str(next(_codes))
    return Appointment(
        id=f"ap{code}",
        code=code,
        service=service,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=15),
        name=name,
        email=None,
        lang=lang,
        state=state,
        created_at=starts_at - timedelta(days=2),
    )


def slot_open_now() -> datetime:
    """The start of a slot whose check-in is open on the real clock, whatever the hour.

    It starts this second: a slot some minutes ahead would, shortly before the office's
    midnight, be tomorrow's, whose check-in is refused today (``too_early``).
    """
    return datetime.now(UTC).replace(microsecond=0)


def insert_appointment(store: Store, appointment: Appointment, *, seat: int = 0) -> Appointment:
    """Write ``appointment`` to the store's ``appointments`` table, as booking does."""
    with store.transaction() as conn:
        conn.execute(
            APPOINTMENTS.insert().values(
                id=appointment.id,
                code=appointment.code,
                service=appointment.service,
                starts_at=appointment.starts_at,
                ends_at=appointment.ends_at,
                seat=seat,
                name=appointment.name,
                email=appointment.email,
                lang=appointment.lang,
                state=appointment.state.value,
                created_at=appointment.created_at,
                hold_until=appointment.hold_until,
            )
        )
    return appointment


def open_for_remote(queue: QueueService, service: str = "taxes", **rules: Any) -> None:
    """Let ``service`` take remote tickets at any hour, up to its closing (``rules``:
    further :class:`RemoteRules` fields)."""
    found = queue.service(service)
    assert found is not None
    remote = RemoteRules(enabled=True, stop_before_close_s=0, **rules)
    queue.save_service(dataclasses.replace(found, hours=OpeningHours(), remote=remote))
