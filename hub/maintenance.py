"""The hub's daily chores: pruning old records and the nightly backup, on a thread.

Each chore has a local time of day (``[retention] prune_at``, ``[backup] at``) and
runs once a day from then on: a hub that was switched off at that time does it
when it next runs that day. The backup's day is read from the newest backup's
name, so a restarted hub does not make a second one. A chore that fails is logged
and tried again an hour later. The queue never waits for a chore longer than one
short transaction (see :mod:`hub.retention` and :mod:`hub.backup`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final

from common.settings import Settings, redact_url
from hub import appointments, backup, retention
from hub.service import utc_now
from hub.store import Store

log = logging.getLogger(__name__)

CHECK_S: Final = 60.0
"""How often the thread looks whether a chore is due."""

RETRY_S: Final = 3600.0
"""How long after a failed chore it is tried again."""


def cutoffs(settings: Settings, now: datetime) -> retention.Cutoffs:
    """What the ``[retention]`` settings let go at ``now``."""
    keep = settings.retention
    return retention.Cutoffs.of(
        now,
        now.astimezone(settings.site.tzinfo).date(),
        history_days=keep.history_days,
        working_days=keep.working_days,
        acked_events_only=settings.uplink.enabled,
    )


def prune_now(
    settings: Settings, store: Store, now: datetime, stop: threading.Event | None = None
) -> retention.PruneReport:
    """Prune everything older than the ``[retention]`` settings allow, at ``now``."""
    return retention.prune(store, cutoffs(settings, now), batch=settings.retention.batch, stop=stop)


class Maintenance:
    """Runs the daily chores of one hub; :meth:`run_due` is one look, the thread loops it."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Callable[[], datetime] = utc_now,
        on_backup: Callable[[str | None], None] = lambda _error: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.on_backup = on_backup
        """Told of each nightly backup: ``None`` when it was made, else why it failed."""
        self._pruned: date | None = None
        self._retry_at: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="poradovnik-maintenance", daemon=True
        )

    def start(self) -> None:
        """Start the thread; the first look is at once."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (a pruning run stops after its current batch)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def run_due(self) -> list[str]:
        """Do whatever chore is due now; say what was done."""
        done: list[str] = []
        now = self.clock()
        local = now.astimezone(self.settings.site.tzinfo)
        if self._due("prune", now, local, self.settings.retention.prune_at, self._pruned):
            pruned = self._attempt("prune", now, lambda: self._prune(now))
            if pruned:
                self._pruned = local.date()
                done.append(pruned)
        config = self.settings.backup
        if config.nightly and self._due("backup", now, local, config.at, None):
            made = self._attempt(
                "backup", now, lambda: self._backup(now, local), report=self.on_backup
            )
            if made:
                done.append(made)
        return done

    def _due(self, chore: str, now: datetime, local: datetime, at: time, last: date | None) -> bool:
        retry = self._retry_at.get(chore)
        if retry is not None and now < retry:
            return False
        return local.time() >= at and (last is None or last < local.date())

    def _attempt(
        self,
        chore: str,
        now: datetime,
        work: Callable[[], str],
        *,
        report: Callable[[str | None], None] = lambda _error: None,
    ) -> str:
        """Do ``work``; ``report`` hears ``None`` when it did something, else the failure."""
        try:
            result = work()
        except Exception as exc:
            log.exception("the %s failed; it is tried again in an hour", chore)
            self._retry_at[chore] = now + timedelta(seconds=RETRY_S)
            report(str(exc) or type(exc).__name__)
            return ""
        self._retry_at.pop(chore, None)
        if result:
            log.info("%s", result)
            report(None)
        return result

    def _prune(self, now: datetime) -> str:
        report = str(prune_now(self.settings, self.store, now, self._stop))
        lapsed = appointments.expire_holds(self.store, now)
        erased = appointments.forget_contacts(self.store, now)
        return (
            f"{report}; appointments: {lapsed} lapsed holds cancelled, "
            f"the addresses of {erased} past ones erased"
        )

    def _backup(self, now: datetime, local: datetime) -> str:
        """Make today's backup unless there is one already; "" when there is."""
        directory = self.settings.backup_dir
        last = backup.newest(directory)
        if last is not None and last.at.astimezone(local.tzinfo).date() >= local.date():
            return ""
        made = backup.make_backup(self.store.url, directory, now=now)
        removed = backup.rotate(directory, self.settings.backup.keep)
        return f"nightly backup {made}" + (f"; removed {len(removed)} older" if removed else "")

    def _run(self) -> None:
        while True:
            try:
                self.run_due()
            except Exception:
                log.exception("the hub's daily chores failed")
            if self._stop.wait(CHECK_S):
                return


# -- the command line's ``poradovnik db`` -----------------------------------------


def db_backup(settings: Settings, directory: Path | None = None, *, label: str = "") -> Path:
    """``poradovnik db backup``: a backup now, beside the nightly ones or in ``directory``.

    Works while the hub runs. ``label`` goes into the file's name. Returns the new file.
    """
    return backup.make_backup(settings.database_url, directory or settings.backup_dir, label=label)


def db_restore(settings: Settings, file: Path, *, ids_after: int = 0) -> str:
    """``poradovnik db restore``: put a backup back while no hub runs; say what happened.

    ``ids_after``: the audit log's ids go on above it (see :func:`hub.backup.restore`).
    """
    saved = backup.restore(settings.database_url, file, settings.backup_dir, ids_after=ids_after)
    kept = f"; the database it replaced is saved as {saved}" if saved else ""
    return f"restored {file} into {redact_url(settings.database_url)}{kept}"


def db_downgrade(settings: Settings, revision: str) -> str:
    """``poradovnik db downgrade``: take the schema back to an older version's revision."""
    with backup.HubLock(settings.database_url), Store(settings.database_url) as store:
        before = store.revision()
        store.downgrade(revision)
        after = store.revision()
    if before == after:
        return f"the database is at revision {after} already"
    return f"downgraded the database from revision {before} to {after}"


def db_prune(settings: Settings) -> str:
    """``poradovnik db prune``: prune now what ``[retention]`` lets go (the hub may run)."""
    with Store(settings.database_url) as store:
        store.upgrade()
        return str(prune_now(settings, store, utc_now()))
