"""Backups and restore of the hub's database on SQLite and PostgreSQL, the nightly
backup, and the lock that keeps a restore away from a running hub."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from office_helpers import OfficeBroker
from process_helpers import Process, poradovnik_args
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from test_hub_process import free_port, hub_config, receive_until
from test_store import TAXES, TZ, WASTE, make_ticket, new

from common.settings import BackupSettings, DatabaseSettings, DataSettings, Settings
from hub.app import open_queue, seed_demo
from hub.backup import BackupError, HubLock, HubRunning, backups, make_backup, restore, rotate
from hub.maintenance import Maintenance
from hub.model import Action
from hub.store import HEAD_REVISION, Store, metadata, sqlite_url

POLL_S = 30.0  # an upper bound for waiting, never a pause


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own: a SQLite file, or a new PostgreSQL database (pg_dump
    copies a whole database), dropped afterwards."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "data" / "hub.sqlite3")
        return
    base = request.getfixturevalue("postgres_server")
    name = f"test_backup_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def settings_for(url: str, tmp_path: Path, **backup: object) -> Settings:
    return Settings(
        role="hub",
        data=DataSettings(dir=tmp_path / "data"),
        database=DatabaseSettings(url=url),
        backup=BackupSettings(**backup),  # type: ignore[arg-type]
    )


def issued(store: Store) -> tuple[set[str], set[str]]:
    """The ids of the stored tickets, and of the tickets with an audit row of their issue."""
    tickets, events = metadata.tables["tickets"], metadata.tables["events"]
    with store.db.connect() as conn:
        ids = set(conn.execute(select(tickets.c.id)).scalars())
        audited = conn.execute(
            select(events.c.ticket_id).where(events.c.action == Action.ISSUE.value)
        ).scalars()
        return ids, {ticket_id for ticket_id in audited if ticket_id is not None}


def test_a_backup_made_while_the_queue_writes_restores_every_ticket_and_audit_row(
    db_url: str, tmp_path: Path
) -> None:
    settings = settings_for(db_url, tmp_path)
    queue = open_queue(settings)
    seed_demo(queue)
    services = list(queue.engine.services)
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            written.append(queue.issue(services[n % len(services)]).ticket.id)
            n += 1

    for n in range(50):
        written.append(queue.issue(services[n % len(services)]).ticket.id)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        before = set(written)  # committed before the backup began
        backup = make_backup(db_url, settings.backup_dir)
        during = len(written)
    finally:
        stop.set()
        thread.join()
    queue.store.close()
    assert len(written) > during or during > len(before)  # the writer was writing

    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.backup_dir.stat().st_mode) == 0o700
    saved = restore(db_url, backup, settings.backup_dir)
    assert saved is not None
    assert saved != backup

    with Store(db_url) as store:
        tickets, audited = issued(store)
        assert before <= tickets  # every ticket issued before the backup
        assert tickets == audited  # each with its audit row, and no row without its ticket
        assert tickets <= set(written)
        store.upgrade()  # the hub can start on it
    # What the restore replaced was saved first: everything written.
    restore(db_url, saved, tmp_path / "other")
    with Store(db_url) as store:
        assert issued(store) == (set(written), set(written))


def test_audit_ids_go_on_past_the_replaced_database_after_a_restore(
    db_url: str, tmp_path: Path
) -> None:
    """The ids are the city's sequence numbers: a restore must not give them again."""
    settings = settings_for(db_url, tmp_path)
    queue = open_queue(settings)
    seed_demo(queue)
    service = next(iter(queue.engine.services))
    queue.issue(service)
    backup = make_backup(db_url, settings.backup_dir)
    for _ in range(5):
        queue.issue(service)
    events = metadata.tables["events"]
    with queue.store.db.connect() as conn:
        given = conn.execute(select(func.max(events.c.id))).scalar_one()
    queue.store.close()

    restore(db_url, backup, settings.backup_dir)
    queue = open_queue(settings)
    try:
        queue.issue(service)
        with queue.store.db.connect() as conn:
            newest = conn.execute(select(events.c.id).order_by(events.c.id.desc())).first()
    finally:
        queue.store.close()
    assert newest is not None
    assert newest.id > given


def test_restore_refuses_a_file_that_is_not_a_backup(db_url: str, tmp_path: Path) -> None:
    with Store(db_url) as store:
        store.upgrade()
    suffix = ".pgdump" if db_url.startswith("postgresql") else ".sqlite3"
    junk = tmp_path / f"hub-20260101T000000Z{suffix}"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError):
        restore(db_url, junk, tmp_path / "backups")
    with Store(db_url) as store:
        assert store.revision() is not None  # untouched


def test_restore_is_refused_while_a_hub_holds_the_lock(db_url: str, tmp_path: Path) -> None:
    with Store(db_url) as store:
        store.upgrade()
    backup = make_backup(db_url, tmp_path / "backups")
    with HubLock(db_url), pytest.raises(HubRunning, match="stop it first"):
        restore(db_url, backup, tmp_path / "backups")
    with HubLock(db_url), pytest.raises(HubRunning):  # nor two hubs at once
        HubLock(db_url).acquire()
    assert restore(db_url, backup, tmp_path / "backups") is not None


def test_rotation_keeps_the_newest_backups_and_other_files(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "hub.sqlite3")
    with Store(url) as store:
        store.upgrade()
    start = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)
    made = [make_backup(url, tmp_path / "b", now=start + timedelta(days=n)) for n in range(5)]
    mine = tmp_path / "b" / "notes.txt"
    mine.write_text("the office's own file")
    removed = rotate(tmp_path / "b", 2)
    assert removed == made[:3]
    assert [b.path for b in backups(tmp_path / "b")] == made[3:]
    assert mine.exists()
    assert not list((tmp_path / "b").glob(".*partial"))


def test_the_nightly_backup_runs_once_a_day_and_keeps_its_number(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "data" / "hub.sqlite3")
    settings = settings_for(url, tmp_path, at=time(2, 30), keep=2)
    now = [datetime(2026, 12, 6, 1, 0, tzinfo=TZ)]
    with Store(url) as store:
        store.upgrade()
        chores = Maintenance(settings, store, clock=lambda: now[0])
        assert not any("backup" in done for done in chores.run_due())  # not yet 02:30
        now[0] = now[0].replace(hour=2, minute=31)
        assert any("nightly backup" in done for done in chores.run_due())
        assert not any("backup" in done for done in chores.run_due())  # once a day
        for day in (7, 8, 9):
            now[0] = now[0].replace(day=day, hour=9)  # off at night: done when it runs
            assert any("nightly backup" in done for done in chores.run_due())
    assert [b.at.astimezone(TZ).day for b in backups(settings.backup_dir)] == [8, 9]


def test_a_second_hub_and_a_restore_are_refused_while_a_hub_process_runs(
    tmp_path: Path, broker: OfficeBroker, processes: Callable[..., Process]
) -> None:
    data = tmp_path / "data"
    config = hub_config(tmp_path / "hub.toml", broker, data, free_port())
    url = sqlite_url(data / "hub.sqlite3")
    with Store(url) as store:
        store.upgrade()
        store.save_service(TAXES)
        store.save_service(WASTE)
        store.write(new(make_ticket(1)))
    backup = make_backup(url, tmp_path / "backups")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(POLL_S)
    # The daily chores are due at once; the old ticket (expired at start) is history.
    chores = {
        "PORADOVNIK_BACKUP__AT": "00:00",
        "PORADOVNIK_RETENTION__PRUNE_AT": "00:00",
        "PORADOVNIK_RETENTION__HISTORY_DAYS": "1",
    }
    hub = processes(
        poradovnik_args("--config", str(config), "hub"),
        name="hub",
        env={"NOTIFY_SOCKET": str(tmp_path / "notify"), **chores},
        cwd=tmp_path,
    )
    try:
        receive_until(notify, "READY=1")
        for wanted in ("pruned 1 tickets", "nightly backup"):
            hub.wait_for_line(lambda line, w=wanted: w in line, POLL_S, what=wanted)
        assert [b.path.parent for b in backups(data / "backups")] == [data / "backups"]
        second = poradovnik("--config", str(config), "hub", cwd=tmp_path)
        assert second.returncode == 1, second.stderr
        assert f"a hub (process {hub.pid}) is running on" in second.stderr
        refused = poradovnik("--config", str(config), "db", "restore", str(backup), cwd=tmp_path)
        assert refused.returncode == 1
        assert "stop it first" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert hub.stop(signal.SIGTERM, timeout=POLL_S) == 0, hub.describe()
    finally:
        notify.close()
    restored = poradovnik("--config", str(config), "db", "restore", str(backup), cwd=tmp_path)
    assert restored.returncode == 0, restored.stderr
    assert f"restored {backup}" in restored.stdout
    with Store(url) as store:
        assert store.count_tickets() == 1  # as it was backed up, before it was pruned


def poradovnik(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the command ``poradovnik ARGS`` (not a server) to its end."""
    return subprocess.run(
        poradovnik_args(*args), cwd=cwd, capture_output=True, text=True, timeout=POLL_S, check=False
    )


def test_db_backup_command_writes_where_it_is_told(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "hub.toml"
    config.write_text(f'role = "hub"\n[data]\ndir = "{data}"\n')
    with Store(sqlite_url(data / "hub.sqlite3")) as store:
        store.upgrade()
    run = poradovnik(
        "--config", str(config), "db", "backup", "--to", str(tmp_path / "usb"), cwd=tmp_path
    )
    out, err = run.stdout, run.stderr
    assert run.returncode == 0, err
    made = Path(out.strip())
    assert made.parent == tmp_path / "usb"
    assert made.is_file()
    assert [b.path for b in backups(tmp_path / "usb")] == [made]
    assert os.stat(made).st_mode & 0o077 == 0


def test_restore_on_a_new_card_takes_the_citys_progress_for_the_ids(tmp_path: Path) -> None:
    """No old database to read: ``--ids-after`` says where the city's copy ends."""
    data = tmp_path / "data"
    config = tmp_path / "hub.toml"
    config.write_text(f'role = "hub"\n[data]\ndir = "{data}"\n')
    settings = settings_for(sqlite_url(data / "hub.sqlite3"), tmp_path)
    queue = open_queue(settings)
    seed_demo(queue)
    queue.issue(next(iter(queue.engine.services)))
    backup = make_backup(settings.database_url, tmp_path / "usb")
    queue.store.close()
    for old in data.glob("hub.sqlite3*"):
        old.unlink()  # the card is lost
    args = ("--config", str(config), "db", "restore", str(backup))
    refused = poradovnik(*args, "--ids-after", "-1", cwd=tmp_path)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    run = poradovnik(*args, "--ids-after", "5000", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    queue = open_queue(settings)
    try:
        queue.issue(next(iter(queue.engine.services)))
        events = metadata.tables["events"]
        with queue.store.db.connect() as conn:
            newest = conn.execute(select(func.max(events.c.id))).scalar_one()
    finally:
        queue.store.close()
    assert newest == 5001


def test_a_failed_nightly_backup_is_tried_again_an_hour_later(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "data" / "hub.sqlite3")
    blocked = tmp_path / "usb"
    blocked.write_text("not a folder: the stick is not mounted")
    settings = settings_for(url, tmp_path, at=time(2, 30), dir=blocked)
    now = [datetime(2026, 12, 6, 3, 0, tzinfo=TZ)]
    with Store(url) as store:
        store.upgrade()
        chores = Maintenance(settings, store, clock=lambda: now[0])
        assert not any("backup" in done for done in chores.run_due())
        blocked.unlink()  # mounted now, but it is not tried again before the hour
        now[0] += timedelta(minutes=30)
        assert not any("backup" in done for done in chores.run_due())
        now[0] += timedelta(minutes=31)
        assert any("nightly backup" in done for done in chores.run_due())
    assert len(backups(blocked)) == 1


def test_db_downgrade_names_a_revision_it_does_not_know(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "hub.toml"
    config.write_text(f'role = "hub"\n[data]\ndir = "{data}"\n')
    with Store(sqlite_url(data / "hub.sqlite3")) as store:
        store.upgrade()
    run = poradovnik("--config", str(config), "db", "downgrade", "0999_future", cwd=tmp_path)
    _, err = run.stdout, run.stderr
    assert run.returncode == 1
    assert "cannot downgrade to 0999_future" in err
    assert "Traceback" not in err
    same = poradovnik("--config", str(config), "db", "downgrade", HEAD_REVISION, cwd=tmp_path)
    out, err = same.stdout, same.stderr
    assert same.returncode == 0, err
    assert f"at revision {HEAD_REVISION} already" in out
