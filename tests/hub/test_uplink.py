"""The branch's uplink: its audit log reaches the city once, in order, whatever is lost.

A real Mosquitto (the office's), a real hub queue on SQLite, and a stand-in for the
city's consumer: an acker on the same broker that stores what it gets the way the city
does (consecutive rows only) and answers with the retained acknowledgement.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue as queue_module
import signal
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from office_helpers import OfficeBroker, hub_settings
from process_helpers import Process, poradovnik_args
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.engine import make_url
from test_hub_process import notify_socket, receive_until  # noqa: F401 (a fixture)
from uplink_helpers import (
    WAIT_S,
    Acker,
    assert_copy_complete,
    issue,
    log_ids,
    start_acker,
    wait_acked,
)

from common.settings import Settings, SettingsError, load_settings, settings_warnings
from hub import retention
from hub.app import open_queue, seed_demo
from hub.audit import AdminAudit, AuditEntry, AuditFilter
from hub.backup import make_backup, restore
from hub.broker import free_port
from hub.catalogue import CITY_ACTOR, CatalogueApplier, catalogue_hours
from hub.service import QueueService
from hub.store import Store
from hub.store.tables import EVENTS
from hub.uplink import SKIPPED, Uplink, UplinkLog, fitting
from sync_agent.city_protocol import (
    CITY_MAX_PAYLOAD_BYTES,
    Catalogue,
    CatalogueApplied,
    CatalogueService,
    CityTopics,
    HistoryEvent,
    decode_city,
)


@pytest.fixture
def settings(broker: OfficeBroker, tmp_path: Path) -> Settings:
    return hub_settings(broker, tmp_path / "hub")


@pytest.fixture
def queue(settings: Settings) -> Iterator[QueueService]:
    service = open_queue(settings)
    seed_demo(service)
    yield service
    service.store.close()


@pytest.fixture
def acker(broker: OfficeBroker) -> Iterator[Acker]:
    acker = start_acker(broker.mqtt("hub"), broker.site)
    yield acker
    acker.connection.stop()


@pytest.fixture
def start_uplink(broker: OfficeBroker, queue: QueueService) -> Iterator[Callable[..., Uplink]]:
    running: list[Uplink] = []

    def start(**options: Any) -> Uplink:
        uplink = Uplink(queue.store, site=broker.site, mqtt=broker.mqtt("hub"), **options)
        queue.subscribe(uplink.changed)
        running.append(uplink.start())
        return uplink

    yield start
    for uplink in running:
        uplink.stop()


def test_every_event_arrives_once_in_order_with_its_ticket(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    issue(queue, 5)
    uplink = start_uplink()
    issue(queue, 250)  # more than two batches, while it runs
    last = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == last, f"every row up to {last}")
    assert_copy_complete(acker, queue)
    first = acker.stored[0]
    ticket = queue.store.ticket(first.ticket_id) if first.ticket_id else None
    assert ticket is not None
    assert first.number == ticket.number
    assert first.business_day == ticket.business_day
    wait_acked(uplink, last)
    assert UplinkLog(queue.store).acked() == last


def test_a_lower_ack_makes_the_branch_send_again_from_there(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    issue(queue, 30)
    uplink = start_uplink()
    last = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == last, "the first rows")
    wait_acked(uplink, last)
    # The city's database came back from an older state: it holds 10 rows only.
    with acker.changed:
        del acker.stored[10:]
    acker.ack(10)
    acker.wait_for(lambda a: a.progress == last, "the rows again from 11")
    assert_copy_complete(acker, queue)


def test_a_lost_batch_is_sent_again_after_the_timeout(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    acker.drop = 1
    start_uplink(resend_s=0.5)
    issue(queue, 20)
    last = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == last, "the lost batch sent again")
    assert acker.batches >= 2
    assert_copy_complete(acker, queue)


def test_a_restarted_hub_goes_on_from_the_kept_ack(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    issue(queue, 40)
    first = start_uplink()
    last = log_ids(queue)[-1]
    wait_acked(first, last)
    first.stop()
    batches = acker.batches
    issue(queue, 7)
    second = start_uplink()
    newest = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == newest, "the rows after the restart")
    wait_acked(second, newest)
    assert acker.batches == batches + 1, "the restarted hub sent old rows again"
    assert_copy_complete(acker, queue)


def test_the_window_bounds_what_is_unacknowledged(
    queue: QueueService, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    acker.silent = True
    issue(queue, 60)
    uplink = start_uplink(window=25, resend_s=60)
    acker.wait_for(lambda a: a.progress >= 25, "the first window")
    with uplink.idle:
        uplink.idle.wait_for(lambda: uplink.sent == 25, WAIT_S)
    assert acker.progress == 25
    assert uplink.sent == 25
    acker.silent = False
    acker.ack(25)
    last = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == last, "the rest after the ack")
    assert_copy_complete(acker, queue)


def test_retention_keeps_what_the_city_has_not_acknowledged(
    queue: QueueService, settings: Settings, acker: Acker, start_uplink: Callable[..., Uplink]
) -> None:
    acker.silent = True
    issue(queue, 10)
    uplink = start_uplink(resend_s=60)
    acker.wait_for(lambda a: a.progress == 10, "the rows")
    acker.ack(4)
    wait_acked(uplink, 4)
    # Every row is older than the history kept.
    with queue.store.transaction() as conn:
        conn.execute(update(EVENTS).values(at=datetime.now(UTC) - timedelta(days=500)))
    now = datetime.now(UTC)
    keep = dict(history_days=400, working_days=7)
    cutoffs = retention.Cutoffs.of(now, now.date(), **keep, acked_events_only=True)
    report = retention.prune(queue.store, cutoffs, batch=3)
    assert report.deleted["events"] == 4
    assert log_ids(queue) == list(range(5, 11))
    # Without an uplink, they all go.
    retention.prune(queue.store, retention.Cutoffs.of(now, now.date(), **keep), batch=3)
    assert log_ids(queue) == []
    # And the ids go on above them: never reused.
    issue(queue, 1)
    assert log_ids(queue) == [11]


@pytest.mark.parametrize("replaced", ["kept", "lost"])
def test_after_a_restore_of_an_older_backup_every_new_row_reaches_the_city(
    broker: OfficeBroker,
    settings: Settings,
    queue: QueueService,
    acker: Acker,
    start_uplink: Callable[..., Uplink],
    replaced: str,
) -> None:
    """Rows written after a restore get sequences the city has never stored.

    ``kept``: the restore replaces the hub's database (it reads how far its ids went);
    ``lost``: restored on a new card, the hub learns it from the city's retained ack.
    """
    issue(queue, 10)
    uplink = start_uplink()
    old = log_ids(queue)[-1]
    wait_acked(uplink, old)
    backup = make_backup(settings.database_url, settings.backup_dir)
    issue(queue, 12)  # sent to the city, and not in the backup
    sent = log_ids(queue)[-1]
    acker.wait_for(lambda a: a.progress == sent, "the rows after the backup")
    wait_acked(uplink, sent)
    uplink.stop()
    queue.store.close()
    if replaced == "lost":
        database = Path(make_url(settings.database_url).database or "")
        for leftover in database.parent.glob(database.name + "*"):
            leftover.unlink()
    restore(settings.database_url, backup, settings.backup_dir)

    restored = open_queue(settings)
    try:
        again = Uplink(restored.store, site=broker.site, mqtt=broker.mqtt("hub"))
        restored.subscribe(again.changed)
        again.start()
        try:
            wait_acked(again, sent)  # the city's retained ack
            issue(restored, 5)
            newest = log_ids(restored)[-1]
            acker.wait_for(lambda a: a.progress == newest, "the rows after the restore")
            wait_acked(again, newest)
        finally:
            again.stop()
        with restored.store.db.connect() as conn:
            rows = conn.execute(select(EVENTS).where(EVENTS.c.id > sent).order_by(EVENTS.c.id))
            written = [(r.id, r.action, r.ticket_id) for r in rows]
    finally:
        restored.store.close()
    assert len(written) == 5, "the new rows reuse sequences the city holds"
    at_city = {e.seq: (e.seq, e.action, e.ticket_id) for e in acker.stored}
    assert [at_city.get(seq) for seq, _, _ in written] == written


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "not JSON"),
        (b'{"v": 1, "site": "office", "seq": -3, "at": "2026-12-07T10:00:00Z"}', "negative"),
        (b'{"v": 1, "site": "elsewhere", "seq": 3, "at": "2026-12-07T10:00:00Z"}', "wrong site"),
        (b'{"v": 1, "site": "office", "seq": 9999999999999, "at": "2026-12-07T10:00:00Z"}', "far"),
        (
            b'{"v": 1, "site": "office", "seq": 3, "at": "2026-12-07T10:00:00Z", "x": '
            + b"[" * 200
            + b"]" * 200
            + b"}",
            "deep",
        ),
        (b'{"v": 1, "site": "office", "seq": 3, "pad": "' + b"x" * 60_000 + b'"}', "huge"),
    ],
)
def test_a_hostile_ack_is_refused_with_a_log_line(
    queue: QueueService,
    acker: Acker,
    start_uplink: Callable[..., Uplink],
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
    why: str,
) -> None:
    acker.silent = True
    issue(queue, 10)
    uplink = start_uplink(resend_s=60)
    acker.wait_for(lambda a: a.progress == 10, "the rows")
    acker.ack(6)
    wait_acked(uplink, 6)
    taken = uplink.acks
    with caplog.at_level(logging.WARNING, logger="hub.uplink"):
        acker.connection.publish(CityTopics(acker.site).ack, payload, retain=True)
        with uplink.idle:
            refused = uplink.idle.wait_for(
                lambda: any("refused an ack" in r.getMessage() for r in caplog.records), WAIT_S
            )
        assert refused, f"no log line for the {why} ack"
    assert uplink.acks == taken, why
    assert uplink.acked == 6, why
    acker.ack(7)  # a good one after it still counts
    wait_acked(uplink, 7)
    issue(queue, 1)
    acker.wait_for(lambda a: a.progress == 11, "the next row after the hostile ack")


# -- the city's catalogue ---------------------------------------------------------------

WEEKDAYS = {
    "always": False,
    "days": {str(d): [["08:00", "12:00"], ["13:00", "16:00"]] for d in range(5)},
}


def offered(code: str, prefix: str, name: str, **extra: object) -> CatalogueService:
    names = {lang: f"{name} ({lang})" for lang in ("sk", "cs", "uk", "en")}
    return CatalogueService.model_validate(
        {"code": code, "prefix": prefix, "names": names, "hours": WEEKDAYS, **extra}
    )


def catalogue(version: int, *services: CatalogueService) -> Catalogue:
    return Catalogue(version=version, published_at=datetime.now(UTC), services=list(services))


@pytest.fixture
def applier(queue: QueueService, broker: OfficeBroker) -> CatalogueApplier:
    audit = AdminAudit(queue.store, queue.clock)
    return CatalogueApplier(queue, audit, site=broker.site, clock=queue.clock)


def city_audit(queue: QueueService) -> list[AuditEntry]:
    entries, _ = AdminAudit(queue.store, queue.clock).find(AuditFilter(actor=CITY_ACTOR))
    return entries


def test_the_catalogue_is_applied_as_an_admin_change_and_answered(
    queue: QueueService,
    broker: OfficeBroker,
    acker: Acker,
    applier: CatalogueApplier,
    start_uplink: Callable[..., Uplink],
) -> None:
    untouched = queue.service("parking")
    start_uplink(applier=applier)
    sent = catalogue(3, offered("taxes", "A", "Dane"), offered("permits", "P", "Povolenia"))
    answers: queue_module.Queue[bytes] = queue_module.Queue()
    acker.connection.subscribe(
        CityTopics(broker.site).catalogue_applied, lambda m: answers.put(m.payload)
    )
    acker.connection.publish(CityTopics(broker.site).catalogue, sent.encode(), retain=True)
    applied = decode_city(CatalogueApplied, answers.get(timeout=WAIT_S))
    assert (applied.site, applied.version, applied.kept_local, applied.refused) == (
        broker.site,
        3,
        [],
        [],
    )
    taxes, permits = queue.service("taxes"), queue.service("permits")
    assert taxes is not None
    assert permits is not None
    assert taxes.names["en"] == "Dane (en)"
    assert taxes.hours == catalogue_hours(WEEKDAYS)
    assert (permits.prefix, permits.names["sk"]) == ("P", "Povolenia (sk)")
    assert queue.service("parking") == untouched
    entries = {e.object_id: e for e in city_audit(queue)}
    assert {code: e.action for code, e in entries.items()} == {
        "permits": "create",
        "taxes": "update",
    }
    assert "→ Dane (en)" in entries["taxes"].summary
    assert "hours: always → Mon 08:00-12:00 13:00-16:00" in entries["taxes"].summary
    assert UplinkLog(queue.store).catalogue_version() == 3


def test_what_the_branch_admin_changed_is_kept(
    queue: QueueService, applier: CatalogueApplier
) -> None:
    assert applier.apply(catalogue(1, offered("taxes", "A", "Dane"))).kept_local == []
    taxes = queue.service("taxes")
    assert taxes is not None
    # The branch's admin renames the service in English and moves its letter.
    queue.save_service(
        dataclasses.replace(taxes, prefix="T", names={**taxes.names, "en": "Local taxes"})
    )
    applied = applier.apply(catalogue(2, offered("taxes", "A", "Miestne dane")))
    assert sorted(applied.kept_local) == ["taxes.name_en", "taxes.prefix"]
    taxes = queue.service("taxes")
    assert taxes is not None
    assert (taxes.prefix, taxes.names["en"], taxes.names["sk"]) == (
        "T",
        "Local taxes",
        "Miestne dane (sk)",
    )
    # Still kept at the next version: the admin's word stands until they change it back.
    applied = applier.apply(catalogue(3, offered("taxes", "A", "Dane a poplatky")))
    assert sorted(applied.kept_local) == ["taxes.name_en", "taxes.prefix"]


def test_a_service_that_cannot_be_placed_is_refused_and_the_rest_applied(
    queue: QueueService, applier: CatalogueApplier, caplog: pytest.LogCaptureFixture
) -> None:
    bad_hours = [
        {"always": False, "days": {"9": [["08:00", "12:00"]]}},
        {"always": False, "days": {"0": [["12:00", "08:00"]]}},
        {"always": False, "days": {"0": [["08:00", "12:00"], ["11:00", "13:00"]]}},
        {"always": False, "days": {"0": [["08:00+01:00", "12:00"]]}},
        {"always": False, "days": {"0": [["8 o'clock", "12:00"]]}},
        {"always": "yes"},
        {"always": False, "days": {"0": "08:00-12:00"}},
        {"always": False, "days": {"0": [[8, 12]]}},
    ]
    services = [offered("clash", "B", "Clash")]  # B is the local waste service's letter
    services += [offered(f"bad{i}", "QRSTUVWX"[i], "Bad", hours=h) for i, h in enumerate(bad_hours)]
    services.append(offered("permits", "P", "Povolenia"))
    with caplog.at_level(logging.WARNING, logger="hub.catalogue"):
        applied = applier.apply(catalogue(1, *services))
    assert [line.split(":")[0] for line in applied.refused] == [
        "clash",
        *(f"bad{i}" for i in range(len(bad_hours))),
    ]
    assert "already used by service waste" in applied.refused[0]
    assert len([r for r in caplog.records if "refused the city's service" in r.getMessage()]) == 9
    assert queue.service("permits") is not None
    assert queue.service("clash") is None
    waste = queue.service("waste")
    assert waste is not None
    assert waste.prefix == "B"


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (
            b'{"v": 1, "version": 5, "published_at": "2026-12-07T10:00:00Z", "services": '
            + b"[" * 300
            + b"]" * 300
            + b"}",
            "deep",
        ),
        (b'{"v": 1, "version": 5, "pad": "' + b"x" * 60_000 + b'"}', "huge"),
        (
            b'{"v": 1, "version": -1, "published_at": "2026-12-07T10:00:00Z", "services": []}',
            "negative version",
        ),
        (
            b'{"v": 1, "version": 5, "published_at": "2026-12-07T10:00:00Z", "services": ['
            + b",".join([b'{"code": "s", "prefix": "A", "names": {"sk": "x"}}'] * 65)
            + b"]}",
            "too many services",
        ),
        (
            b'{"v": 1, "version": 5, "published_at": "2026-12-07T10:00:00Z", "services": '
            b'[{"code": "../x", "prefix": "a1", "names": {"xx": ""}}]}',
            "bad fields",
        ),
    ],
)
def test_a_hostile_catalogue_is_refused_with_a_log_line(
    queue: QueueService,
    broker: OfficeBroker,
    acker: Acker,
    applier: CatalogueApplier,
    start_uplink: Callable[..., Uplink],
    caplog: pytest.LogCaptureFixture,
    payload: bytes,
    why: str,
) -> None:
    before = queue.services()
    uplink = start_uplink(applier=applier)
    with caplog.at_level(logging.WARNING, logger="hub.uplink"):
        acker.connection.publish(CityTopics(broker.site).catalogue, payload, retain=True)
        with uplink.idle:
            refused = uplink.idle.wait_for(
                lambda: any(
                    "refused the city's catalogue" in r.getMessage() for r in caplog.records
                ),
                WAIT_S,
            )
    assert refused, f"no log line for the {why} catalogue"
    assert queue.services() == before
    assert UplinkLog(queue.store).catalogue_version() is None
    # The hub goes on: its log still reaches the city.
    issue(queue, 1)
    acker.wait_for(lambda a: a.progress == log_ids(queue)[-1], "the row after the catalogue")


# -- the migration ----------------------------------------------------------------------


def events_schema(queue: QueueService) -> str:
    with queue.store.db.connect() as conn:
        return str(
            conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'events'")).scalar()
        )


def test_the_migration_keeps_every_event_id_both_ways(queue: QueueService) -> None:
    issue(queue, 12)
    with queue.store.transaction() as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.id.in_([3, 4])))
    kept = log_ids(queue)
    assert "AUTOINCREMENT" in events_schema(queue)
    queue.store.downgrade("0014_remote_tickets")
    assert log_ids(queue) == kept
    assert "AUTOINCREMENT" not in events_schema(queue)
    with queue.store.db.connect() as conn:
        tables = set(
            conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars()
        )
    assert not {"uplink_state", "city_services"} & tables
    queue.store.upgrade()
    assert log_ids(queue) == kept
    assert "AUTOINCREMENT" in events_schema(queue)
    with queue.store.db.connect() as conn:
        indexes = list(
            conn.execute(text("SELECT name FROM sqlite_master WHERE tbl_name = 'events'")).scalars()
        )
    assert "ix_events_ticket_id" in indexes
    # The newest row deleted, its id is not given again.
    with queue.store.transaction() as conn:
        conn.execute(delete(EVENTS).where(EVENTS.c.id == kept[-1]))
    issue(queue, 1)
    assert log_ids(queue)[-1] == kept[-1] + 1


# -- the log as the uplink reads it, on SQLite and PostgreSQL ----------------------------


class RolledBack(Exception):
    """Ends a transaction the test wants rolled back."""


def add_event(store: Store, actor: str, *, roll_back: bool = False) -> None:
    row = {"at": datetime.now(UTC), "action": "issue", "actor": actor, "detail": {"lang": "sk"}}
    with contextlib.suppress(RolledBack), store.transaction() as conn:
        conn.execute(insert(EVENTS).values(**row))
        if roll_back:
            raise RolledBack


def test_the_log_has_no_holes_and_keeps_the_ack(store: Store) -> None:
    log = UplinkLog(store)
    assert log.acked() is None
    assert log.batch(0) == (1, [])
    add_event(store, "first")
    add_event(store, "lost", roll_back=True)  # PostgreSQL's sequence moves on all the same
    add_event(store, "second")
    first, events = log.batch(0)
    assert first == 1
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    real = [e for e in events if e.action != SKIPPED]
    assert [e.actor for e in real] == ["first", "second"]
    assert [e.seq for e in real] == log_ids_of(store)
    assert real[0].detail == {"lang": "sk"}
    assert log.batch(events[-1].seq) == (1, [])
    # A write rolled back right after what was sent: the next batch still follows on.
    add_event(store, "lost again", roll_back=True)
    add_event(store, "third")
    _, more = log.batch(events[-1].seq)
    assert more[0].seq == events[-1].seq + 1
    assert [e.actor for e in more if e.action != SKIPPED] == ["third"]
    events += more
    log.save_ack(1)
    log.save_catalogue_version(4)
    log.save_ack(2)
    assert (log.acked(), log.catalogue_version(), log.highest()) == (2, 4, events[-1].seq)


def log_ids_of(store: Store) -> list[int]:
    with store.db.connect() as conn:
        return list(conn.execute(select(EVENTS.c.id).order_by(EVENTS.c.id)).scalars())


def test_an_event_too_large_for_the_city_goes_without_its_detail() -> None:
    at = datetime.now(UTC)
    big = [
        HistoryEvent(seq=i, at=at, action="issue", actor="kiosk", detail={"x": "y" * 1000})
        for i in range(1, 41)
    ]
    batch = fitting("office", 1, big)
    assert 0 < len(batch.events) < 40
    assert len(batch.encode()) <= CITY_MAX_PAYLOAD_BYTES
    # Within the schema's bounds for a detail, yet larger than a payload.
    detail = {f"k{i}": ["y" * 1000] * 32 for i in range(2)}
    huge = HistoryEvent(seq=7, at=at, action="issue", actor="kiosk", detail=detail)
    alone = fitting("office", 1, [huge])
    assert alone.events[0].detail == {"truncated": True}


# -- the hub process ----------------------------------------------------------------------


def test_the_hub_process_with_an_uplink_sends_its_log_and_stops_cleanly(
    tmp_path: Path,
    broker: OfficeBroker,
    acker: Acker,
    queue: QueueService,
    settings: Settings,
    processes: Callable[..., Process],
    notify_socket: socket.socket,  # noqa: F811 (the fixture)
) -> None:
    issue(queue, 20)
    last = log_ids(queue)[-1]
    queue.store.close()
    config = tmp_path / "hub.toml"
    config.write_text(
        f'role = "hub"\n[data]\ndir = "{settings.data.dir}"\n'
        f'[mqtt]\nport = {broker.port}\nusername = "hub"\npassword = "{broker.passwords["hub"]}"\n'
        f"[web]\nport = {free_port()}\n"
        '[uplink]\nhost = "127.0.0.1"\nusername = "branch-office"\n'
        'password = "the-city-s-long-password"\n'
    )
    hub = processes(
        poradovnik_args("--config", str(config), "hub"),
        name="hub",
        env={"NOTIFY_SOCKET": str(tmp_path / "notify")},
        cwd=tmp_path,
    )
    receive_until(notify_socket, "READY=1")
    acker.wait_for(lambda a: a.progress == last, "the log from the hub process")
    hub.wait_for_line(lambda line: "uplink of site office" in line, WAIT_S, what="the uplink")
    assert hub.stop(signal.SIGTERM, timeout=WAIT_S) == 0, hub.describe()
    assert "Traceback" not in hub.output()
    assert_copy_complete(acker, open_queue(settings))


def test_retention_keeps_unacknowledged_rows_on_each_database(store: Store) -> None:
    for actor in ("a", "b", "c", "d"):
        add_event(store, actor)
    ids = log_ids_of(store)
    long_ago = datetime.now(UTC) - timedelta(days=500)
    with store.transaction() as conn:
        conn.execute(update(EVENTS).values(at=long_ago))
    now = datetime.now(UTC)
    cutoffs = retention.Cutoffs.of(
        now, now.date(), history_days=400, working_days=7, acked_events_only=True
    )
    assert retention.prune(store, cutoffs, batch=10).deleted["events"] == 0
    UplinkLog(store).save_ack(ids[1])
    assert retention.prune(store, cutoffs, batch=10).deleted["events"] == 2
    assert log_ids_of(store) == ids[2:]


# -- the settings ---------------------------------------------------------------------------

SECRET = "the-branch-s-own-password"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ('host = "city.example.sk"\nusername = "b"', "host needs username and password"),
        (f'host = "city.example.sk"\npassword = "{SECRET}"', "host needs username and password"),
        (f'host = "https://city.example.sk/"\nusername = "b"\npassword = "{SECRET}"', "host name"),
        ('host = "city.example.sk"\nusername = "b"\npassword = "short"', "too short"),
        (
            f'host = "c.sk"\nusername = "b"\npassword = "{SECRET}"\ncertfile = "c.pem"',
            "certfile and keyfile go together",
        ),
        (
            f'host = "c.sk"\nusername = "b"\npassword = "{SECRET}"\ntls = false\ncafile = "ca"',
            "need tls = true",
        ),
        (f'host = "c.sk"\nusername = "a b"\npassword = "{SECRET}"', "username"),
        ("port = 0", "port"),
        ("insecure = true", "unknown key"),
    ],
)
def test_uplink_settings_are_checked_without_showing_the_password(
    tmp_path: Path, section: str, problem: str
) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(f'role = "hub"\n[uplink]\n{section}\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    assert problem in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_plain_uplink_is_allowed_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(
        f'role = "hub"\n[uplink]\nhost = "c.sk"\nport = 11883\nusername = "b"\n'
        f'password = "{SECRET}"\ntls = false\n'
    )
    warnings = settings_warnings(load_settings(path))
    assert any("in clear" in warning for warning in warnings)
