"""Whether a process is alive, for systemd's watchdog: every loop that matters progresses.

A watchdog pinged from a loop that does nothing else proves only that this loop runs:
a hung MQTT network thread or button thread would never be restarted. Here each loop
that matters (a role's main loop, the MQTT network thread, a counter panel's button
thread) owns a :class:`Heartbeat` and beats it every time round, and wakes at least
every :data:`BEAT_S` to do so when it has nothing else to do. A :class:`Watchdog`
thread pings systemd (``WATCHDOG=1``) only while every heartbeat it watches is fresh:
beaten within half of ``WatchdogSec``. When one falls silent, the pings stop, the
status line (``systemctl status``) names the silent loop, and systemd restarts the
service once ``WatchdogSec`` has passed without a ping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType

from common.sdnotify import Notifier

__all__ = ["BEAT_S", "Heartbeat", "Watchdog"]

log = logging.getLogger(__name__)

BEAT_S = 1.0
"""The longest a watched loop waits between two beats when it has nothing else to do.

A watchdog needs ``WatchdogSec`` of 4 s or more to tell a slow loop from a hung one.
"""


class Heartbeat:
    """When one loop last made progress: the loop calls :meth:`beat` every time round.

    It counts as beaten when made, so a loop has until the watchdog's limit to start.
    """

    def __init__(self, name: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        """What the loop is, for the log and the status line (``MQTT network thread``)."""
        self._clock = clock
        self._last = clock()

    def beat(self, *, ago: float = 0.0) -> None:
        """Say the loop has made progress just now, or ``ago`` seconds ago.

        ``ago`` is for a loop of another process that reports how long it has been silent.
        """
        self._last = self._clock() - ago

    def silent_for(self) -> float:
        """Seconds since the last beat."""
        return self._clock() - self._last


class Watchdog:
    """Pings systemd's watchdog, from a thread of its own, while every heartbeat is fresh.

    ``notifier`` is the process's systemd link; its ``$WATCHDOG_USEC`` sets the pace:
    every heartbeat must have beaten within half of ``WatchdogSec``, checked four
    times per ``WatchdogSec``. Without a watchdog (outside systemd, or a unit without
    ``WatchdogSec``) it only sends the readiness. Use it as a context manager around
    the role's main loop, calling :meth:`ready` once the role serves.
    """

    def __init__(
        self,
        notifier: Notifier,
        heartbeats: Iterable[Heartbeat] = (),
    ) -> None:
        self.notifier = notifier
        self.heartbeats = list(heartbeats)
        """The loops watched."""
        interval = notifier.watchdog_interval()
        self.max_silence_s = interval
        """How long a loop may go without a beat (half of ``WatchdogSec``); ``None``
        without a watchdog."""
        self._status: str | None = None
        self._stalled: tuple[str, ...] = ()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, heartbeat: Heartbeat) -> Heartbeat:
        """Watch one more loop; returns its heartbeat."""
        self.heartbeats.append(heartbeat)
        return heartbeat

    def silent(self) -> list[Heartbeat]:
        """The watched loops that have not beaten within :attr:`max_silence_s`."""
        limit = self.max_silence_s
        if limit is None:
            return []
        return [beat for beat in self.heartbeats if beat.silent_for() > limit]

    def check(self) -> bool:
        """Ping the watchdog if every loop is fresh, else say which are not; whether pinged."""
        silent = self.silent()
        names = tuple(beat.name for beat in silent)
        if silent:
            if names != self._stalled:
                longest = max(beat.silent_for() for beat in silent)
                what = ", ".join(names)
                log.warning(
                    "no progress in the %s for %.0f s: not telling systemd this service "
                    "is alive (it restarts it if this lasts)",
                    what,
                    longest,
                )
                self.notifier.status(f"not alive: no progress in the {what}")
            self._stalled = names
            return False
        if self._stalled:
            log.info("every loop makes progress again")
            self._stalled = ()
            if self._status is not None:
                self.notifier.status(self._status)
        return self.notifier.watchdog()

    def ready(self, status: str) -> None:
        """Tell systemd the role serves (``READY=1`` and ``status``), and start pinging."""
        self._status = status
        self.notifier.ready(status)
        if self.max_silence_s is None or self._thread is not None:
            return
        self.check()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.max_silence_s is not None
        while not self._stop.wait(self.max_silence_s / 2):
            try:
                self.check()
            except Exception:  # the pings must not end for a surprise in the log
                log.exception("checking the loops failed")

    def stop(self) -> None:
        """Stop pinging (the role is stopping)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
