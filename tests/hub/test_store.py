"""Tests of the hub's store on SQLite and PostgreSQL (see conftest's ``store_url``)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, DateTime, Integer, MetaData, inspect, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import make_url

from hub.engine import Engine
from hub.model import (
    Action,
    Change,
    Counter,
    CounterState,
    Event,
    OpeningHours,
    Priority,
    RemoteRules,
    Service,
    Ticket,
    TicketState,
)
from hub.store import (
    HEAD_REVISION,
    SQLITE_PAGE_SIZE,
    Receipt,
    Store,
    StoreError,
    UTCDateTime,
    metadata,
    sqlite_url,
)

TZ = ZoneInfo("Europe/Bratislava")
DAY = date(2026, 3, 2)  # a Monday
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=TZ)
WINDOW = 20

TAXES = Service("taxes", "A", {"sk": "Miestne dane", "en": "Local taxes"})
WASTE = Service("waste", "B", {"sk": "Komunálny odpad", "uk": "Комунальні відходи"})
DESK_1 = Counter("1", "Okienko 1", ("taxes", "waste"))
DESK_2 = Counter("2", "Okienko 2", ("waste",))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def seed(store: Store) -> None:
    """Save the test catalog."""
    store.save_service(TAXES)
    store.save_service(WASTE)
    store.save_counter(DESK_1)
    store.save_counter(DESK_2)


def make_ticket(seq: int, service: str = "taxes", day: date = DAY, **changes: object) -> Ticket:
    prefix = {"taxes": "A", "waste": "B"}[service]
    issued = datetime.combine(day, time(8, 0), TZ) + timedelta(seconds=seq)
    ticket = Ticket(
        id=f"{service}{day:%m%d}{seq:04d}".ljust(32, "0"),
        number_service=service,
        business_day=day,
        seq=seq,
        number=f"{prefix}{seq:03d}",
        service=service,
        issued_at=issued,
        arrived_at=issued,
    )
    return ticket.evolve(**changes)


def new(*tickets: Ticket) -> Change:
    return Change(tickets=tickets, new_ticket_ids=frozenset(t.id for t in tickets))


class Hub:
    """A tiny stand-in for the service layer: decide, persist, then apply, under a lock."""

    def __init__(self, store: Store, day: date = DAY) -> None:
        self.store = store
        self.engine = Engine.from_snapshot(store.load_snapshot(day, WINDOW), timezone=TZ)
        self.lock = threading.Lock()
        self.events: list[Event] = []

    def do(self, operation: Callable[[Engine], Change | None]) -> Change:
        with self.lock:
            change = operation(self.engine)
            assert change is not None
            self.store.write(change)
            self.engine.apply(change)
            self.events.extend(change.events)
            return change

    def issue(self, service: str, now: datetime, **options: object) -> Ticket:
        ticket = self.do(lambda e: e.issue(service, now, **options)).subject  # type: ignore[arg-type]
        assert ticket is not None
        return ticket


# -- schema and migrations ---------------------------------------------------------


def test_sqlite_url_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlite_url(Path("data/hub.db")) == f"sqlite+pysqlite:///{tmp_path}/data/hub.db"


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        Store("sqlite://")


def test_upgrade_creates_schema_and_is_idempotent(store_url: str) -> None:
    with Store(store_url) as store:
        if store.db.dialect.name == "sqlite":
            assert Path(make_url(store_url).database or "").parent.is_dir()
        store.upgrade()
        store.upgrade()
        tables = set(inspect(store.db).get_table_names())
        assert {"services", "counters", "tickets", "events", "alembic_version"} <= tables
        with store.db.connect() as conn:
            versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [v for (v,) in versions] == [HEAD_REVISION]
    with Store(store_url) as again:  # a restart upgrades an existing database
        again.upgrade()
        assert again.count_tickets() == 0


def test_migrations_match_models(store: Store) -> None:
    with store.db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        # The comparison is not vacuous: a column the database lacks is reported.
        changed = MetaData(naming_convention=metadata.naming_convention)
        for table in metadata.sorted_tables:
            table.to_metadata(changed)
        changed.tables["tickets"].append_column(Column("extra", Integer))
        assert compare_metadata(context, changed) != []


def test_sqlite_pragmas_and_begin_immediate(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    with Store(sqlite_url(path)) as store:
        store.upgrade()
        with store.db.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "busy_timeout",
                    "page_size",
                )
            }
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 1,  # NORMAL
            "foreign_keys": 1,
            "busy_timeout": 5000,
            "page_size": SQLITE_PAGE_SIZE,  # a new database
        }
        # A write transaction takes the write lock at BEGIN (IMMEDIATE), before any
        # statement, so it can never fail later upgrading a read lock.
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with store._transaction():
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
                assert store.count_tickets() == 0  # readers are not blocked (WAL)
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()


def test_queue_writes_begin_immediate_and_commit(tmp_path: Path) -> None:
    with Store(sqlite_url(tmp_path / "hub.db")) as store:
        store.upgrade()
        seed(store)  # opens the writer connection
        assert store._writer is not None
        statements: list[str] = []
        store._writer.dbapi.set_trace_callback(statements.append)
        store.write(new(make_ticket(1)))
        assert [statements[0], statements[-1]] == ["BEGIN IMMEDIATE", "COMMIT"]
        assert len(statements) == 3  # the ticket, nothing else
        assert statements[1].startswith("INSERT INTO tickets")


def test_existing_sqlite_database_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    old = sqlite3.connect(path)
    old.execute("PRAGMA page_size=4096")
    old.execute("CREATE TABLE legacy (x INTEGER)")  # the page size is now fixed
    old.close()
    with Store(sqlite_url(path)) as store:
        store.upgrade()
        seed(store)
        store.write(new(make_ticket(1)))
        with store.db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
        assert store.count_tickets() == 1


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 2, 9, 15, 1, 123456, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=TZ),
        datetime(2026, 3, 2, 8, 0, tzinfo=UTC),  # no microseconds: still six digits
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        None,
    ],
)
def test_sqlite_timestamp_text_is_sqlalchemys(value: datetime | None) -> None:
    # UTCDateTime formats for SQLite in one step; the text must be exactly what the
    # usual chain (process_bind_param, then SQLite's DATETIME) gives, which its
    # result processor reads back.
    dialect = sqlite.dialect()
    sqlite_datetime = DateTime(timezone=True).dialect_impl(dialect)
    fast = UTCDateTime().bind_processor(dialect)
    usual = sqlite_datetime.bind_processor(dialect)
    parse = sqlite_datetime.result_processor(dialect, None)
    assert fast is not None
    assert usual is not None
    assert parse is not None
    expected = usual(UTCDateTime().process_bind_param(value, dialect))
    assert fast(value) == expected
    if value is not None:
        assert UTCDateTime().process_result_value(parse(expected), dialect) == value


def test_sqlite_queries_use_indexes(tmp_path: Path) -> None:
    # Every query but the start-up's search for live tickets is served by an index
    # (the indexes are few on purpose: each costs the write path; see TicketRow).
    with Store(sqlite_url(tmp_path / "hub.db")) as store:
        store.upgrade()
        seed(store)
        ticket = make_ticket(1)
        store.write(new(ticket, make_ticket(2, state=TicketState.DONE)))
        queries: list[tuple[str, Any]] = []

        @sa_event.listens_for(store.db, "before_cursor_execute")
        def _record(conn: object, cursor: object, sql: str, params: object, *_: object) -> None:
            queries.append((sql, params))

        store.load_snapshot(DAY, WINDOW)
        store.last_business_day()
        store.count_tickets(DAY)
        store.ticket(ticket.id)
        store.events(ticket.id)
        sa_event.remove(store.db, "before_cursor_execute", _record)

        scans = []
        with store.db.connect() as conn:
            for sql, params in queries:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
                for *_, step in plan:
                    if step in ("SCAN tickets", "SCAN events"):
                        scans.append(sql)
        assert len(scans) == 1
        assert "tickets.state IN" in scans[0]


def test_writer_reconnects_after_its_connection_broke(tmp_path: Path) -> None:
    with Store(sqlite_url(tmp_path / "hub.db")) as store:
        store.upgrade()
        seed(store)
        assert store._writer is not None
        store._writer.dbapi.close()  # as if the connection had died
        with pytest.raises(sqlite3.ProgrammingError):
            store.write(new(make_ticket(1)))
        store.write(new(make_ticket(2)))
        assert store.ticket(make_ticket(1).id) is None
        assert store.ticket(make_ticket(2).id) is not None


def test_checkpointer_stops_on_close(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path / "hub.db"))
    store.upgrade()
    seed(store)
    assert any(t.name == "poradovnik-store-checkpoint" for t in threading.enumerate())
    store.close()
    assert not any(t.name == "poradovnik-store-checkpoint" for t in threading.enumerate())


# -- catalog -----------------------------------------------------------------------


def test_empty_store(store: Store) -> None:
    assert store.services() == []
    assert store.counters() == []
    assert store.last_business_day() is None
    assert store.count_tickets() == 0
    assert store.events() == []
    store.write(Change())  # nothing to do
    snapshot = store.load_snapshot(DAY, WINDOW)
    assert (snapshot.tickets, snapshot.last_seq, snapshot.durations) == ([], {}, {})


def test_service_round_trip(store: Store) -> None:
    hours = OpeningHours(
        days={
            0: ((time(8, 0), time(12, 0)), (time(13, 0), time(15, 30))),
            4: ((time(8, 0), time(12, 0)),),
        },
        always=False,
    )
    service = Service(
        code="permits",
        prefix="C",
        names={"sk": "Povolenia", "cs": "Povolení", "uk": "Дозволи", "en": "Permits"},
        hours=hours,
        daily_limit=150,
        open=False,
        weight=1.5,
        default_service_time_s=420,
        priority_allowed=False,
    )
    store.save_service(service)
    assert store.services() == [service]
    with store.db.connect() as conn:
        stored = conn.execute(text("SELECT hours FROM services")).scalar_one()
    if isinstance(stored, str):  # SQLite hands JSON back as text
        stored = json.loads(stored)
    assert stored == {
        "always": False,
        "days": {"0": [["08:00", "12:00"], ["13:00", "15:30"]], "4": [["08:00", "12:00"]]},
    }


def test_catalog_order_and_upsert(store: Store) -> None:
    seed(store)
    assert [s.code for s in store.services()] == ["taxes", "waste"]
    renamed = Service("taxes", "A", {"sk": "Dane a poplatky"}, weight=2.0)
    store.save_service(renamed)  # keeps its place
    store.save_service(Service("info", "I", {"sk": "Informácie"}), position=-1)
    assert store.services() == [Service("info", "I", {"sk": "Informácie"}), renamed, WASTE]
    assert [c.id for c in store.counters()] == ["1", "2"]
    store.save_counter(Counter("0", "Recepcia", ("info",)), position=-1)
    assert [c.id for c in store.counters()] == ["0", "1", "2"]


def test_duplicate_prefix_is_refused(store: Store) -> None:
    seed(store)
    with pytest.raises(StoreError) as caught:
        store.save_service(Service("parking", "A", {"sk": "Parkovanie"}))
    assert caught.value.code == "integrity"
    assert [s.code for s in store.services()] == ["taxes", "waste"]


def test_saving_a_counter_keeps_its_queue_state(store: Store) -> None:
    seed(store)
    hub = Hub(store)
    hub.issue("taxes", at(0))
    called = hub.do(lambda e: e.call_next("1", at(1))).subject
    assert called is not None
    desk = store.counters()[0]
    assert (desk.state, desk.current) == (CounterState.OPEN, called.id)

    store.save_counter(Counter("1", "Okienko jedna", ("waste", "taxes")))
    assert store.counters()[0] == Counter(
        "1", "Okienko jedna", ("waste", "taxes"), CounterState.OPEN, called.id
    )


# -- tickets and events --------------------------------------------------------------


def test_ticket_round_trip_keeps_every_field(store: Store) -> None:
    seed(store)
    plus_two = timezone(timedelta(hours=2))
    ticket = Ticket(
        id="0123456789abcdef0123456789abcdef",
        number_service="taxes",
        business_day=DAY,
        seq=42,
        number="A042",
        service="waste",  # transferred
        issued_at=datetime(2026, 3, 2, 9, 15, 1, 123456, tzinfo=plus_two),
        arrived_at=datetime(2026, 3, 2, 7, 15, 2, 654321, tzinfo=UTC),
        state=TicketState.SERVING,
        priority=Priority.WITH_CHILD,
        lang="uk",
        counter="2",
        calls=2,
        called_at=datetime(2026, 3, 2, 8, 30, tzinfo=TZ),
        serving_at=datetime(2026, 3, 2, 8, 31, 5, tzinfo=TZ),
        finished_at=None,
        origin="kiosk-k1",
    )
    store.write(new(ticket))
    loaded = store.ticket(ticket.id)
    assert loaded == ticket
    assert loaded is not None
    for value in (loaded.issued_at, loaded.arrived_at, loaded.called_at, loaded.serving_at):
        assert value is not None
        assert value.tzinfo is UTC
    assert loaded.issued_at.hour == 7  # 09:15 at +02:00

    done = ticket.evolve(state=TicketState.DONE, finished_at=at(40), priority=None)
    store.write(Change(tickets=(done,)))
    assert store.ticket(ticket.id) == done
    assert store.ticket("missing") is None


def test_naive_datetimes_are_refused(store: Store) -> None:
    seed(store)
    naive = make_ticket(1, issued_at=datetime(2026, 3, 2, 8, 0))
    with pytest.raises(ValueError, match="naive"):
        store.write(new(naive))
    assert store.count_tickets() == 0


def test_event_round_trip(store: Store) -> None:
    seed(store)
    ticket = make_ticket(1)
    events = (
        Event(
            at=datetime(2026, 3, 2, 8, 0, 0, 1, tzinfo=TZ),
            action=Action.TRANSFER,
            actor="counter:1",
            ticket_id=ticket.id,
            counter_id="1",
            service="waste",
            from_state="serving",
            to_state="waiting",
            detail={"to_service": "waste", "auto": True, "n": 3, "list": [1, "dva"]},
        ),
        Event(at=at(1), action=Action.PAUSE, actor="admin:jana", counter_id="2"),
        Event(at=at(2), action=Action.EXPIRE, actor="system", ticket_id=ticket.id),
    )
    store.write(Change(tickets=(ticket,), events=events, new_ticket_ids=frozenset({ticket.id})))
    assert store.events() == list(events)
    assert all(e.at.tzinfo is UTC for e in store.events())
    assert store.events(ticket.id) == [events[0], events[2]]
    assert store.events(limit=2) == list(events[1:])  # the newest, oldest first
    assert store.events("other") == []


def test_write_is_all_or_nothing(store: Store) -> None:
    seed(store)
    ghost = make_ticket(2)  # never inserted
    change = Change(
        tickets=(make_ticket(1), ghost.evolve(state=TicketState.CALLED)),
        events=(Event(at=at(0), action=Action.ISSUE, actor="system"),),
        new_ticket_ids=frozenset({make_ticket(1).id}),
    )
    with pytest.raises(StoreError) as caught:
        store.write(change)
    assert caught.value.code == "unknown_row"
    assert store.count_tickets() == 0
    assert store.events() == []
    store.write(new(make_ticket(1)))  # the writer connection still works
    assert store.count_tickets() == 1


def test_unknown_service_is_refused_by_foreign_key(store: Store) -> None:
    seed(store)
    stray = make_ticket(1).evolve(service="parking")
    with pytest.raises(StoreError) as caught:
        store.write(new(stray))
    assert caught.value.code == "integrity"


def test_unknown_counter_is_refused(store: Store) -> None:
    with pytest.raises(StoreError) as caught:
        store.write(Change(counters=(Counter("9", "Okienko 9", ()),)))
    assert caught.value.code == "unknown_row"


# -- snapshots and restarts ------------------------------------------------------------


def test_load_snapshot(store: Store) -> None:
    seed(store)
    yesterday = DAY - timedelta(days=1)
    tickets = [
        make_ticket(7, day=yesterday, state=TicketState.PARKED),  # live from an earlier day
        make_ticket(9, day=yesterday, state=TicketState.DONE),
        make_ticket(1, state=TicketState.WAITING),
        make_ticket(1, "waste", state=TicketState.CALLED, counter="2", calls=1),
        make_ticket(2, state=TicketState.NO_SHOW, finished_at=at(5)),
    ]
    # Five visits of 10, 20, … 50 s; the window keeps the last three.
    for i, seconds in enumerate((10, 20, 30, 40, 50)):
        tickets.append(
            make_ticket(
                3 + i,
                state=TicketState.DONE,
                called_at=at(10 * i),
                finished_at=at(10 * i) + timedelta(seconds=seconds),
            )
        )
    store.write(new(*tickets))

    snapshot = store.load_snapshot(DAY, 3)
    assert snapshot.day == DAY
    assert snapshot.services == [TAXES, WASTE]
    assert snapshot.counters == [DESK_1, DESK_2]
    assert {t.id for t in snapshot.tickets} == {tickets[i].id for i in (0, 2, 3)}
    assert snapshot.last_seq == {"taxes": 7, "waste": 1}
    assert snapshot.issued == {"taxes": 7, "waste": 1}
    assert snapshot.durations == {"taxes": [30.0, 40.0, 50.0]}
    assert store.count_tickets(DAY) == 8
    assert store.last_business_day() == DAY
    assert store.count_tickets(yesterday) == 2
    assert store.count_tickets() == 10

    later = store.load_snapshot(DAY + timedelta(days=1), 0)
    assert later.last_seq == later.issued == {}
    assert later.durations == {}
    assert len(later.tickets) == 3


def test_restart_continues_numbering(open_store: Callable[[], Store]) -> None:
    first = open_store()
    seed(first)
    hub = Hub(first)
    for minute, service in enumerate(("taxes", "taxes", "waste", "taxes", "waste")):
        hub.issue(service, at(minute), actor="kiosk:k1")
    hub.do(lambda e: e.call_next("1", at(10)))  # A001
    hub.do(lambda e: e.done("1", at(12)))  # a visit of 120 s
    hub.do(lambda e: e.call_next("1", at(13)))  # A002
    hub.do(lambda e: e.call_next("2", at(14)))  # B001
    hub.do(lambda e: e.start("2", at(15)))
    first.close()

    second = open_store()  # the hub restarts
    snapshot = second.load_snapshot(DAY, WINDOW)
    engine = Engine.from_snapshot(snapshot, timezone=TZ)
    assert engine.tickets == hub.engine.tickets
    assert engine.counters == hub.engine.counters
    assert snapshot.last_seq == {"taxes": 3, "waste": 2}
    assert engine.issued_today("taxes") == 3
    assert engine.mean_service_time("taxes") == 120.0

    resumed = Hub(second)
    a4 = resumed.issue("taxes", at(20))
    b3 = resumed.issue("waste", at(21))
    assert (a4.number, a4.seq, b3.number, b3.seq) == ("A004", 4, "B003", 3)

    # The next day starts afresh: leftovers expire, counters pause, numbers restart.
    tomorrow = at(24 * 60)
    rollover = resumed.do(lambda e: e.roll_over(tomorrow))
    assert len(rollover.tickets) == 6  # six updates in one transaction
    snapshot = second.load_snapshot(tomorrow.date(), WINDOW)
    assert snapshot.tickets == []
    assert all(c.state is CounterState.PAUSED and c.current is None for c in snapshot.counters)
    assert Hub(second, tomorrow.date()).issue("taxes", tomorrow).number == "A001"


def test_audit_rows_for_every_transition(store: Store) -> None:
    seed(store)
    hub = Hub(store)
    a = hub.issue("taxes", at(0), actor="kiosk:k1")
    b = hub.issue("waste", at(1), actor="kiosk:k1", lang="cs")
    hub.do(lambda e: e.call_next("1", at(2), actor="counter:1"))  # resume, call A
    hub.do(lambda e: e.recall("1", at(3), actor="counter:1"))
    hub.do(lambda e: e.start("1", at(4), actor="counter:1"))
    hub.do(lambda e: e.transfer("1", "waste", at(5), actor="counter:1"))
    hub.do(lambda e: e.call_next("2", at(6), actor="counter:2"))  # resume, call A
    hub.do(lambda e: e.park("2", at(7), actor="counter:2"))
    hub.do(lambda e: e.call_next("1", at(8), actor="counter:1"))  # call B
    hub.do(lambda e: e.no_show("1", at(9), actor="counter:1"))
    hub.do(lambda e: e.unpark("1", a.id, at(10), actor="counter:1"))
    hub.do(lambda e: e.done("1", at(11), actor="counter:1"))
    hub.do(lambda e: e.pause("1", at(12), actor="admin:jana"))
    hub.do(lambda e: e.pause("2", at(12), actor="admin:jana"))
    c = hub.issue("taxes", at(13))
    hub.do(lambda e: e.prioritise(c.id, Priority.AGE, at(13), actor="web:jana"))
    hub.do(lambda e: e.reserve("k1", "waste", 5, at(14), actor="kiosk:k1"))
    # Remote tickets: one checked in at a kiosk, one passed over by a call.
    remote = dataclasses.replace(WASTE, remote=RemoteRules(enabled=True, max_passes=2))
    store.save_service(remote)
    hub.engine.put_service(remote)
    hub.do(lambda e: e.issue_remote("waste", at(15), code="222222", actor="portal"))
    hub.do(lambda e: e.issue_remote("waste", at(15), code="111111", actor="portal"))
    hub.do(lambda e: e.check_in_remote("111111", at(16), actor="kiosk:k1"))
    hub.do(lambda e: e.call_next("2", at(17), actor="counter:2"))  # passes 222222 over
    assert hub.engine.remote_ticket("222222").passes == 1  # type: ignore[union-attr]
    resumed = Engine.from_snapshot(store.load_snapshot(DAY, WINDOW), timezone=TZ)
    assert resumed.tickets == hub.engine.tickets
    assert resumed.remote_issued_today("waste") == 2
    hub.do(lambda e: e.roll_over(at(24 * 60)))  # expires the last ones

    stored = store.events()
    assert stored == hub.events
    assert {e.action for e in stored} == set(Action)
    for event in stored:
        assert event.actor
        assert event.at.tzinfo is UTC
        assert event.to_state is not None
    assert [(e.action, e.from_state, e.to_state) for e in store.events(a.id)] == [
        (Action.ISSUE, None, "waiting"),
        (Action.CALL, "waiting", "called"),
        (Action.RECALL, "called", "called"),
        (Action.START, "called", "serving"),
        (Action.TRANSFER, "serving", "waiting"),
        (Action.CALL, "waiting", "called"),
        (Action.PARK, "called", "parked"),
        (Action.UNPARK, "parked", "called"),
        (Action.DONE, "called", "done"),
    ]
    assert store.events(a.id)[-1].at == at(11)
    assert store.events(a.id)[-1].counter_id == "1"
    final_a = store.ticket(a.id)
    assert final_a is not None
    assert (final_a.state, final_a.finished_at, final_a.calls) == (TicketState.DONE, at(11), 1)
    final_b = store.ticket(b.id)
    assert final_b is not None
    assert (final_b.state, final_b.lang) == (TicketState.NO_SHOW, "cs")


# -- concurrency -----------------------------------------------------------------------


def test_eight_threads_issue_unique_numbers(store: Store) -> None:
    seed(store)
    hub = Hub(store)
    threads, per_thread = 8, 30
    start = threading.Barrier(threads)

    def issue_many(worker: int) -> list[Ticket]:
        start.wait()
        issued = []
        for i in range(per_thread):
            service = ("taxes", "waste")[(worker + i) % 2]
            now = at(0) + timedelta(milliseconds=worker * per_thread + i)
            issued.append(hub.issue(service, now))
        return issued

    with ThreadPoolExecutor(threads) as pool:
        results = [t for batch in pool.map(issue_many, range(threads)) for t in batch]

    total = threads * per_thread
    assert len({t.number for t in results}) == total
    assert len({t.id for t in results}) == total
    for service in ("taxes", "waste"):
        seqs = sorted(t.seq for t in results if t.service == service)
        assert seqs == list(range(1, total // 2 + 1))
    assert store.count_tickets(DAY) == total
    assert len(store.events(limit=10 * total)) == total
    snapshot = store.load_snapshot(DAY, WINDOW)
    assert snapshot.issued == {"taxes": total // 2, "waste": total // 2}
    with store.db.connect() as conn:
        tickets = metadata.tables["tickets"]
        numbers = conn.execute(select(tickets.c.number)).scalars().all()
    assert sorted(numbers) == sorted(t.number for t in results)


def test_two_engines_on_one_database_cannot_issue_the_same_number(
    open_store: Callable[[], Store],
) -> None:
    first, second = open_store(), open_store()
    seed(first)
    one, other = Hub(first), Hub(second)

    winner = one.do(lambda e: e.issue("taxes", at(0)))
    loser = other.engine.issue("taxes", at(1))  # the same seq: the engine cannot know
    assert loser.subject is not None
    assert loser.subject.number == "A001"
    with pytest.raises(StoreError) as caught:
        second.write(loser)
    assert caught.value.code == "duplicate_number"
    assert "A001" in caught.value.message

    assert first.count_tickets() == 1
    assert first.events() == list(winner.events)  # nothing of the loser was written
    reloaded = Hub(second)  # what the service layer does: reload, then retry
    assert reloaded.issue("taxes", at(1)).number == "A002"


def test_two_stores_write_concurrently_without_lock_errors(
    open_store: Callable[[], Store],
) -> None:
    # Two writers on their own connections (two hub processes, say) contend for the
    # database's write lock; BEGIN IMMEDIATE plus busy_timeout make them take turns.
    first, second = open_store(), open_store()
    seed(first)
    hubs = {"taxes": Hub(first), "waste": Hub(second)}  # disjoint numbering: no clashes
    start = threading.Barrier(4)

    def issue_many(worker: int) -> int:
        service = ("taxes", "waste")[worker % 2]
        start.wait()
        for i in range(25):
            now = at(0) + timedelta(milliseconds=100 * worker + i)
            hubs[service].issue(service, now)
        return worker

    with ThreadPoolExecutor(4) as pool:
        assert sorted(pool.map(issue_many, range(4))) == [0, 1, 2, 3]

    assert first.count_tickets(DAY) == 100
    assert second.load_snapshot(DAY, WINDOW).last_seq == {"taxes": 50, "waste": 50}


def test_a_receipt_is_written_with_its_change_and_read_back(store: Store) -> None:
    assert store.receipt("kiosk:k1", "m1") is None
    store.write(Change(), receipt=Receipt("kiosk:k1", "m1", T0, b'{"v": 1}'))
    assert store.receipt("kiosk:k1", "m1") == b'{"v": 1}'
    assert store.receipt("kiosk:k2", "m1") is None  # ids are unique per sender only
    with pytest.raises(StoreError):
        store.write(Change(), receipt=Receipt("kiosk:k1", "m1", T0, b"again"))
    assert store.receipt("kiosk:k1", "m1") == b'{"v": 1}'
