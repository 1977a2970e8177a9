"""Backups of the hub's database, their restore, and the lock that says a hub runs on it.

A backup is one file, readable by its owner only, named
``hub-<UTC time>[-<label>].sqlite3`` (SQLite) or ``….pgdump`` (PostgreSQL):

* SQLite: SQLite's online backup API copies the database in one step while the hub
  keeps writing (in WAL mode a reader never blocks the writer, and the copy is the
  database as of one moment). The copy is a self-contained file (no WAL) and is
  checked (``PRAGMA quick_check``) before it gets its name.
* PostgreSQL: ``pg_dump --format=custom`` (Debian's ``postgresql-client``), one
  consistent snapshot; the password goes in the environment, never the command line.

A file is written under a temporary name and renamed, so a backup that is there
is whole. :func:`restore` puts one back, refusing while a hub runs on the
database, and first saves what it replaces as another backup (``before-restore``).

Whether a hub runs is :class:`HubLock`: the hub holds it while it runs. On SQLite
it is ``flock`` on ``<database>.lock`` beside the database (the kernel drops it
when the process ends, however it ends); on PostgreSQL a session advisory lock
(dropped with the hub's connection), which also covers a hub on another machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from common.errors import PoradovnikError
from hub.store.eventids import event_id_mark, move_event_ids_past

log = logging.getLogger(__name__)

_NAME_RE: Final = re.compile(r"hub-(\d{8}T\d{6}Z)(-[a-z0-9.-]+)?\.(sqlite3|pgdump)")
_STAMP: Final = "%Y%m%dT%H%M%SZ"
_PG_LOCK_CLASS: Final = 0x506F7262  # "Porb": the running hub (migrations use "Pora")
_DUMP_TIMEOUT_S: Final = 3600.0


class BackupError(PoradovnikError):
    """A backup or restore could not be made; nothing was replaced."""


class HubRunning(PoradovnikError):
    """A hub holds the database's lock: it is running on it."""


@dataclass(frozen=True, slots=True)
class Backup:
    """One backup file and when it was made."""

    path: Path
    at: datetime
    """When it was made (UTC), from its name."""


def backup_name(url: str, at: datetime, label: str = "") -> str:
    """The file name of a backup of ``url`` made at ``at``: ``hub-20261206T023000Z.sqlite3``."""
    suffix = "pgdump" if _is_postgres(url) else "sqlite3"
    tag = f"-{label}" if label else ""
    name = f"hub-{at.astimezone(UTC).strftime(_STAMP)}{tag}.{suffix}"
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"a backup label is lowercase letters, digits, '.' and '-': {label!r}")
    return name


def backups(directory: Path) -> list[Backup]:
    """The hub's backups in ``directory``, oldest first (other files are ignored)."""
    found = []
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BackupError(f"cannot read the backup folder {directory}: {exc.strerror}") from None
    for entry in entries:
        match = _NAME_RE.fullmatch(entry.name)
        if match and entry.is_file():
            at = datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)
            found.append(Backup(entry, at))
    return sorted(found, key=lambda b: (b.at, b.path.name))


def rotate(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest backups in ``directory``; the deleted files."""
    old = backups(directory)[:-keep] if keep > 0 else backups(directory)
    for item in old:
        item.path.unlink(missing_ok=True)
    return [item.path for item in old]


def make_backup(url: str, directory: Path, *, label: str = "", now: datetime | None = None) -> Path:
    """Copy the database at ``url`` into a new backup file in ``directory``, online.

    Returns the file. Raises :class:`BackupError` when it cannot be made (no
    partial file is left behind).
    """
    at = now or datetime.now(UTC)
    target = directory / backup_name(url, at, label)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {directory}: {exc.strerror}") from None
    partial = target.with_name(f".{target.name}.partial")
    try:
        _owner_only_file(partial)
        if _is_postgres(url):
            _pg_dump(url, partial)
        else:
            _sqlite_copy(_sqlite_path(url), partial)
        _fsync(partial)
        partial.replace(target)
        _fsync(directory)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def restore(url: str, file: Path, backup_dir: Path, *, ids_after: int = 0) -> Path | None:
    """Replace the database at ``url`` with the backup ``file``.

    Refuses (:class:`HubRunning`) while a hub runs on the database, and holds the
    hub's lock meanwhile, so no hub starts half way. What is replaced is saved first
    as a ``before-restore`` backup in ``backup_dir``; that file is returned (``None``
    when there was no database yet). The schema is left as the backup has it: the
    hub brings it up to date when it starts, or ``poradovnik db downgrade`` back.

    The restored audit log's ids go on above those the replaced database gave, and
    above ``ids_after`` (the city's progress for this branch, when the replaced
    database is gone): the city stores the branch's history by them.
    """
    if not file.is_file():
        raise BackupError(f"no backup file {file}")
    postgres = _is_postgres(url)
    if postgres != (file.suffix == ".pgdump"):
        kind = "PostgreSQL" if postgres else "SQLite"
        raise BackupError(f"{file} is not a backup of a {kind} database")
    with HubLock(url):
        if postgres:
            saved: Path | None = make_backup(url, backup_dir, label="before-restore")
            mark = _event_id_mark(url)
            _pg_restore(url, file)
        else:
            _check_sqlite_backup(file)
            path = _sqlite_path(url)
            saved = None
            mark = 0
            if path.exists():
                saved = make_backup(url, backup_dir, label="before-restore")
                mark = _event_id_mark(url)
            _sqlite_restore(file, path)
        _keep_event_ids_past(url, max(mark, ids_after))
    return saved


# -- the audit log's ids across a restore -------------------------------------------


def _event_id_mark(url: str) -> int:
    """How far the database about to be replaced gave audit-log ids (0: unknown)."""
    engine = create_engine(make_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return event_id_mark(conn)
    except SQLAlchemyError as exc:
        # A database too broken to read: the uplink moves the ids once it hears the city.
        log.warning("cannot read how far the replaced database's audit log went: %s", exc)
        return 0
    finally:
        engine.dispose()


def _keep_event_ids_past(url: str, mark: int) -> None:
    """Give the restored database's next audit row an id above ``mark``.

    The ids are the sequence numbers the city stores the branch's history by
    (docs/city.md): an id the replaced database gave may be at the city already, and
    the city would drop a new row sent with it as a duplicate.
    """
    engine = create_engine(make_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            moved = move_event_ids_past(conn, mark)
    except SQLAlchemyError as exc:
        # The restore is done: the uplink moves the ids once it hears the city.
        log.warning("cannot move the restored audit log's ids past %d: %s", mark, exc)
        return
    finally:
        engine.dispose()
    if moved:
        log.info("the restored audit log's ids go on after %d", mark)
    elif mark > 0:
        log.info("the restored audit log's ids go on after %d already", mark)


# -- the running hub's lock -------------------------------------------------------


class HubLock:
    """Held by the hub while it runs on a database; others test it and refuse.

    ``acquire`` raises :class:`HubRunning` naming the holder when another process
    holds it. Usable as a context manager.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._fd: int | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> HubLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise :class:`HubRunning`."""
        if _is_postgres(self.url):
            self._acquire_postgres()
        else:
            self._acquire_file()

    def release(self) -> None:
        """Let the lock go (the process ending does too)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            engine = self._conn.engine
            with contextlib.suppress(Exception):
                self._conn.close()
            engine.dispose()
            self._conn = None

    def _acquire_file(self) -> None:
        path = _sqlite_path(self.url)
        lock = path.with_name(path.name + ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise HubRunning(f"cannot open the hub's lock file {lock}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise HubRunning(
                f"a hub (process {holder}) is running on {path}; stop it first "
                "(systemctl stop poradovnik-hub)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _acquire_postgres(self) -> None:
        parsed = make_url(self.url)
        where = f"{parsed.database}|{parsed.query.get('options', '')}"
        key = zlib.crc32(where.encode()) & 0x7FFFFFFF
        engine = create_engine(parsed, poolclass=NullPool)
        conn = engine.connect()
        try:
            params = {"cls": _PG_LOCK_CLASS, "key": key}
            got = conn.execute(text("SELECT pg_try_advisory_lock(:cls, :key)"), params).scalar()
            conn.commit()
            if got:
                self._conn = conn
                return
            holder = conn.execute(
                text(
                    "SELECT a.pid, a.client_addr FROM pg_locks l JOIN pg_stat_activity a "
                    "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = :cls AND l.objid = :key"
                ),
                params,
            ).first()
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        conn.close()
        engine.dispose()
        shown = parsed.render_as_string(hide_password=True)
        client = f" from {holder.client_addr or 'this machine'}" if holder else ""
        raise HubRunning(
            f"a hub{client} is running on {shown}; stop it first (systemctl stop poradovnik-hub)"
        )


# -- SQLite -----------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"cannot back up the database {url}: not a SQLite file")
    return Path(database).expanduser()


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy ``source`` (a live database in WAL mode) into ``target``, consistently."""
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    src = sqlite3.connect(source, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout=5000")
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            # One step: a single read transaction, so the copy is of one moment and
            # is never restarted by the hub's writes.
            src.backup(dst)
            # A file of its own: the rollback journal, not the source's WAL.
            dst.execute("PRAGMA journal_mode=DELETE")
            _quick_check(dst, target)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from None
    finally:
        src.close()


def _check_sqlite_backup(file: Path) -> None:
    """Make sure that ``file`` is a sound backup of a hub's database."""
    try:
        conn = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            _quick_check(conn, file)
            found = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{file} is not a hub's database: {exc}") from None
    if found is None:
        raise BackupError(f"{file} is not a hub's database: it has no schema revision")


def _sqlite_restore(file: Path, path: Path) -> None:
    """Replace the database at ``path`` with ``file``, in one transaction."""
    if not path.exists():
        _owner_only_file(path)
    for leftover in (path.with_name(path.name + "-journal"),):
        leftover.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(path, isolation_level=None)
            try:
                dst.execute("PRAGMA busy_timeout=5000")
                # A WAL database only takes pages of its own size: copy in rollback
                # mode (nobody else has it open: the lock is ours), then back to WAL.
                dst.execute("PRAGMA journal_mode=DELETE")
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=WAL")
                _quick_check(dst, path)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore {file} into {path}: {exc}") from None


def _quick_check(conn: sqlite3.Connection, where: Path) -> None:
    result = conn.execute("PRAGMA quick_check").fetchone()
    if not result or result[0] != "ok":
        raise BackupError(f"{where} is damaged: {result[0] if result else 'no answer'}")


# -- PostgreSQL -------------------------------------------------------------------


def _is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for ``url`` (without its password) and the environment."""
    parsed: URL = make_url(url)
    fields: dict[str, object] = {
        "host": parsed.host,
        "port": parsed.port,
        "user": parsed.username,
        "dbname": parsed.database,
        **{key: value for key, value in parsed.query.items() if isinstance(value, str)},
    }
    conninfo = " ".join(
        f"{key}='{_libpq_quote(str(value))}'" for key, value in fields.items() if value
    )
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return conninfo, env


def _libpq_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian package 'postgresql-client')")
    return found


def _run_pg(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=_DUMP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what}: {Path(args[0]).name} took too long") from None
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        raise BackupError(f"{what}: {detail[-1] if detail else 'failed'}")


def _pg_dump(url: str, target: Path) -> None:
    conninfo, env = _libpq(url)
    args = [_pg_tool("pg_dump"), "--format=custom", "--file", str(target), "--dbname", conninfo]
    _run_pg(args, env, "cannot back up the database")


def _pg_restore(url: str, file: Path) -> None:
    """Drop the hub's tables, then load ``file`` in one transaction."""
    tool = _pg_tool("pg_restore")
    conninfo, env = _libpq(url)
    _run_pg([tool, "--list", str(file)], env, f"{file} is not a database dump")
    engine = create_engine(make_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            # Tables the backup does not have (a later version's) must go too.
            tables = MetaData()
            tables.reflect(conn)
            tables.drop_all(conn)
    finally:
        engine.dispose()
    args = [
        tool,
        "--single-transaction",
        "--exit-on-error",
        "--no-owner",
        "--no-privileges",
        "--dbname",
        conninfo,
        str(file),
    ]
    _run_pg(args, env, f"cannot restore {file}")


# -- files ------------------------------------------------------------------------


def _owner_only_file(path: Path) -> None:
    """Create ``path`` empty, readable and writable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def newest(directory: Path) -> Backup | None:
    """The newest backup in ``directory``, if any."""
    found = backups(directory)
    return found[-1] if found else None
