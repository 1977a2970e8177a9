"""Retention on SQLite and PostgreSQL: old records go in small batches, recent and live
ones stay, and the queue's writer is free between batches."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from test_store import TZ, make_ticket, new, seed

from hub.audit import AdminAudit
from hub.eservice import EServices
from hub.model import Action, Change, Event, NumberBlock, Ticket, TicketState
from hub.retention import Cutoffs, prune
from hub.store import Receipt, Store, metadata
from sync_agent.protocol import EServiceUpdate

TODAY = date(2027, 7, 15)
NOW = datetime(2027, 7, 15, 10, 0, tzinfo=TZ).astimezone(UTC)
OLD_DAY = TODAY - timedelta(days=450)
RECENT_DAY = TODAY - timedelta(days=10)
HISTORY_DAYS = 400
WORKING_DAYS = 7
BATCH = 7


def cutoffs() -> Cutoffs:
    return Cutoffs.of(NOW, TODAY, history_days=HISTORY_DAYS, working_days=WORKING_DAYS)


def count(store: Store, table: str) -> int:
    with store.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(metadata.tables[table])).scalar())


def ticket(day: date, seq: int, state: TicketState = TicketState.DONE) -> Ticket:
    issued = make_ticket(seq, "taxes", day)
    finished = issued.issued_at + timedelta(minutes=5) if state.terminal else None
    return issued.evolve(id=uuid.uuid4().hex, state=state, finished_at=finished)


def audit(at: datetime) -> Event:
    return Event(at=at, action=Action.ISSUE, actor="kiosk:k1", detail={"note": "x"})


def eservice(store: Store, reference: str, status: str, at: datetime, updates: int) -> None:
    services = EServices(store)
    for n in range(updates):
        services.apply(
            EServiceUpdate(
                msg_id=uuid.uuid4().hex,
                system="imesto",
                reference=reference,
                status=status if n == updates - 1 else "received",
                at=at - timedelta(days=updates - 1 - n),
                clerk="Jana Nováková",
                note="free text",
            ),
            now=at,
        )


@pytest.fixture
def filled(store: Store) -> Store:
    """A store with old, recent and live records of every kind."""
    seed(store)
    old = [ticket(OLD_DAY, seq) for seq in range(1, 31)]
    old_live = ticket(OLD_DAY, 31, TicketState.WAITING)
    recent = [ticket(RECENT_DAY, seq) for seq in range(1, 6)]
    today_live = ticket(TODAY, 1, TicketState.WAITING)
    today_done = ticket(TODAY, 2)
    store.write(new(*old, old_live, *recent, today_live, today_done))
    old_at = datetime.combine(OLD_DAY, datetime.min.time(), UTC)
    store.write(Change(events=tuple(audit(old_at + timedelta(seconds=s)) for s in range(30))))
    store.write(Change(events=tuple(audit(NOW - timedelta(days=s)) for s in range(5))))
    for at in (old_at, old_at + timedelta(seconds=1), NOW - timedelta(days=1)):
        AdminAudit(store, lambda at=at: at).record("admin:eva", "service", "taxes", "update", "")
    for n in range(25):
        store.write(
            Change(), receipt=Receipt("counter:1", f"old{n}", NOW - timedelta(days=10), b"{}")
        )
    for n in range(3):
        store.write(
            Change(), receipt=Receipt("counter:1", f"new{n}", NOW - timedelta(days=1), b"{}")
        )
    blocks = (
        NumberBlock("b" * 32, "k1", "taxes", "A", RECENT_DAY, 900, 909, NOW - timedelta(days=10)),
        NumberBlock("c" * 32, "k1", "taxes", "A", TODAY, 900, 909, NOW),
    )
    store.write(Change(blocks=blocks))
    eservice(store, "OLD-CLOSED", "closed", NOW - timedelta(days=450), updates=3)
    eservice(store, "OLD-OPEN", "in_progress", NOW - timedelta(days=450), updates=2)
    eservice(store, "NEW-CLOSED", "closed", NOW - timedelta(days=30), updates=2)
    with store.transaction() as conn:
        for n, ended in enumerate((NOW - timedelta(days=450), NOW - timedelta(days=30))):
            conn.execute(
                insert(metadata.tables["appointments"]).values(
                    id=uuid.uuid4().hex,
                    code=f"{n:08d}",
                    service="taxes",
                    starts_at=ended - timedelta(minutes=15),
                    ends_at=ended,
                    seat=0,
                    name="Anna",
                    lang="sk",
                    state="booked",
                    created_at=ended - timedelta(days=3),
                )
            )
        for n, at in enumerate((NOW - timedelta(days=450), NOW - timedelta(days=450), NOW)):
            conn.execute(
                insert(metadata.tables["notifications"]).values(
                    ticket=f"{n:032x}",
                    kind="ahead",
                    channel="email",
                    state="sent",
                    event_at=at,
                    next_at=at,
                    attempts=1,
                )
            )
        for day in (OLD_DAY, RECENT_DAY):
            at = datetime.combine(day, datetime.min.time(), UTC)
            key = f"{day:%Y%m%d}".ljust(32, "0")
            conn.execute(
                insert(metadata.tables["ratings"]).values(
                    ticket_id=key,
                    business_day=day,
                    number="A001",
                    service="taxes",
                    rating=2,
                    comment="free text",
                    source="portal",
                    at=at,
                )
            )
            for name in ("Slovensko.sk", "iMesto") if day == OLD_DAY else ("iMesto",):
                conn.execute(
                    insert(metadata.tables["eservice_signups"]).values(
                        ticket_id=key, eservice=name, business_day=day, service="taxes", at=at
                    )
                )
    return store


def test_old_records_go_and_recent_and_live_ones_stay(filled: Store) -> None:
    store = filled
    report = prune(store, cutoffs(), batch=BATCH, pause_s=0)
    assert report.deleted == {
        "tickets": 30,
        "events": 30,
        "ratings": 1,
        "eservice_signups": 2,
        "admin_audit": 2,
        "appointments": 1,
        "eservice_applications": 1,
        "notifications": 2,
        "receipts": 25,
        "number_blocks": 1,
    }
    assert not report.stopped
    assert count(store, "notifications") == 1
    assert count(store, "tickets") == 1 + 5 + 2  # the old live one, recent, today's
    with store.db.connect() as conn:
        days = conn.execute(select(metadata.tables["tickets"].c.business_day)).scalars().all()
    assert days.count(OLD_DAY) == 1
    assert count(store, "events") == 5
    assert count(store, "admin_audit") == 1
    assert count(store, "receipts") == 3
    assert store.receipt("counter:1", "new0") == b"{}"
    assert store.receipt("counter:1", "old0") is None
    assert [b.business_day for b in store.number_blocks(TODAY)] == [TODAY]
    with store.db.connect() as conn:
        updates = metadata.tables["eservice_updates"]
        left = conn.execute(select(updates.c.reference)).scalars().all()
    assert sorted(set(left)) == ["NEW-CLOSED", "OLD-OPEN"]
    assert len(left) == 4
    assert count(store, "eservice_applications") == 2
    assert count(store, "ratings") == count(store, "eservice_signups") == 1  # the recent ones
    # Nothing more to do: a second run deletes nothing.
    assert prune(store, cutoffs(), batch=BATCH, pause_s=0).batches == []


def test_each_transaction_deletes_one_small_batch(filled: Store) -> None:
    report = prune(filled, cutoffs(), batch=BATCH, pause_s=0)
    assert report.batches
    assert max(report.batches) <= BATCH
    # 30 tickets, 30 audit rows and 25 receipts take ceil(n / 7) transactions each;
    # a rating, the sign-ups, the admins' audit rows, an appointment, an application, two
    # notices and a block one each.
    assert len(report.batches) == 5 + 5 + 1 + 1 + 1 + 1 + 1 + 1 + 4 + 1


def test_the_queue_writes_between_batches(filled: Store) -> None:
    """After each committed batch the writer is free: a queue write from another thread
    goes through before the next batch starts."""
    written: list[int] = []

    def between(table: str, rows: int) -> None:
        done = threading.Event()

        def write() -> None:
            filled.write(new(ticket(TODAY, 100 + len(written))))
            written.append(rows)
            done.set()

        threading.Thread(target=write).start()
        assert done.wait(10), f"a queue write waited for pruning ({table})"

    report = prune(filled, cutoffs(), batch=BATCH, pause_s=0, after_batch=between)
    assert len(written) == len(report.batches)
    assert filled.count_tickets(TODAY) == 2 + len(written)


def test_a_stopped_run_stops_after_its_batch(filled: Store) -> None:
    stop = threading.Event()
    report = prune(filled, cutoffs(), batch=BATCH, stop=stop, after_batch=lambda *_: stop.set())
    assert report.stopped
    assert report.batches == [BATCH]


def test_records_are_kept_at_least_a_day() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        Cutoffs.of(NOW, TODAY, history_days=0, working_days=7)
