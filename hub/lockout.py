"""Lockouts of guessed secrets: a reference's PIN, a user's password, whatever the address.

Per-address rate limits (Flask-Limiter) slow one client down; an attacker with many
addresses still gets many guesses at one secret. :class:`Lockout` counts attempts
per *target* instead: after ``attempts`` within ``window`` the target is locked for
``duration``, and every attempt at it is refused before the secret is checked.

An attempt is counted before the secret is checked and forgotten when it was right,
so parallel guesses cannot slip past the count. Unknown targets are counted like
known ones: a refusal says nothing about whether the reference or user exists.
The counts live in the hub's database (table ``lockouts``), so every worker
thread sees the same count and a restart does not reset it. Targets are stored as
a digest, never by name.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from hub.store import Store, metadata

__all__ = ["Locked", "Lockout"]

T = TypeVar("T")

_lockouts: Final = metadata.tables["lockouts"]

_PRUNE_EVERY: Final = timedelta(minutes=1)
"""Rows of past windows are deleted at most this often."""


def _now() -> datetime:
    return datetime.now(UTC)


class Locked(Exception):
    """An attempt at a locked target: refused without checking its secret."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("too many wrong attempts; try again later")
        self.retry_after = retry_after

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until the target opens again (for a Retry-After header)."""
        return max(1, -int(-self.retry_after.total_seconds() // 1))


class Lockout:
    """Counts attempts at secrets per target, and locks a target guessed at too often."""

    def __init__(
        self,
        store: Store,
        *,
        attempts: int,
        window: timedelta,
        duration: timedelta,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.attempts = attempts
        """Attempts within :attr:`window` that lock a target."""
        self.window = window
        self.duration = duration
        """How long a locked target stays locked."""
        self.clock = clock
        self._pruned_at: datetime | None = None
        self._prune_lock = threading.Lock()

    def check(self, scope: str, target: str, verify: Callable[[], T | None]) -> T | None:
        """Count an attempt at ``target``, then ``verify()`` its secret (``None``: wrong).

        Raises :class:`Locked`, without calling ``verify``, when the target is locked.
        A right secret forgets the target's attempts.
        """
        locked = self.attempt(scope, target)
        if locked is not None:
            raise Locked(locked)
        found = verify()
        if found is not None:
            self.succeeded(scope, target)
        return found

    @staticmethod
    def key(scope: str, target: str) -> str:
        """The stored form of a target: the SHA-256 of its scope and name, in hex."""
        return hashlib.sha256(f"{scope}\0{target}".encode()).hexdigest()

    def attempt(self, scope: str, target: str) -> timedelta | None:
        """Count an attempt at ``target`` (in ``scope``, such as ``pin``).

        Returns ``None`` when the attempt may go on (its secret be checked), else how
        long the target stays locked; a refused attempt is not counted.
        """
        now = self.clock()
        key = self.key(scope, target)
        with self.store.transaction() as conn:
            self._prune(conn, now)
            query = select(_lockouts).where(_lockouts.c.key == key)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is not None and row.locked_until is not None and row.locked_until > now:
                remaining: timedelta = row.locked_until - now
                return remaining
            fresh = row is None or row.since <= now - self.window
            attempts = 1 if fresh or row is None else row.attempts + 1
            values = {
                "attempts": attempts,
                "since": now if fresh or row is None else row.since,
                "locked_until": now + self.duration if attempts >= self.attempts else None,
            }
            if row is None:
                conn.execute(insert(_lockouts).values(key=key, **values))
            else:
                conn.execute(update(_lockouts).where(_lockouts.c.key == key).values(values))
        return None

    def succeeded(self, scope: str, target: str) -> None:
        """Forget the attempts at ``target``: its secret was given right."""
        with self.store.transaction() as conn:
            conn.execute(delete(_lockouts).where(_lockouts.c.key == self.key(scope, target)))

    def _prune(self, conn: Connection, now: datetime) -> None:
        """Delete the rows of windows and locks that have ended (now and then)."""
        with self._prune_lock:
            if self._pruned_at is not None and now - self._pruned_at < _PRUNE_EVERY:
                return
            self._pruned_at = now
        conn.execute(
            delete(_lockouts).where(
                and_(
                    _lockouts.c.since <= now - self.window,
                    or_(_lockouts.c.locked_until.is_(None), _lockouts.c.locked_until <= now),
                )
            )
        )
