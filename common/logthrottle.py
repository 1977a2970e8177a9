"""Log a repeated event once per interval, with a count, instead of once per event.

A hostile or misconfigured peer can make the same refusal happen thousands of times a
second; one line per event would fill the journal (and the SD card) and hide everything
else. :class:`ThrottledLog` writes the first event of each kind at once, then at most
one line per interval saying how many more there were.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["Throttle", "ThrottledLog"]


class Throttle:
    """Lets one event per key through each ``interval_s``, counting those held back.

    The bookkeeping of every throttled log line here (:class:`ThrottledLog` by an
    explicit key, :class:`common.logging.RepeatFilter` by a record's text). At most
    ``max_keys`` keys are remembered (the oldest are forgotten first), so events
    choosing new keys cannot grow it without bound. Thread-safe.
    """

    def __init__(
        self,
        interval_s: float,
        *,
        max_keys: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        """By key: when one was last let through, and how many were held back since."""

    def admit(self, key: Hashable) -> tuple[int, float] | None:
        """Let an event of ``key`` through, or hold it back (``None``) and count it.

        When let through: how many were held back, and the seconds since the last one
        let through (0 for the first of its key).
        """
        now = self.clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.interval_s:
                self._seen[key] = (last[0], last[1] + 1)
                return None
            self._seen[key] = (now, 0)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
        return (0, 0.0) if last is None else (last[1], now - last[0])


class ThrottledLog:
    """Writes to ``logger`` at most once per ``interval_s`` per key.

    A key names the kind of event (say, a refusal code and the sender). Events of a key
    within the interval after a logged one are only counted; the next one logged after
    the interval says how many were left out (see :class:`Throttle`).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 60.0,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self._throttle = Throttle(interval_s, max_keys=max_keys, clock=clock)

    def log(self, level: int, key: Hashable, message: str, *args: object) -> bool:
        """Log ``message % args`` at ``level`` unless ``key`` was logged within the interval.

        Returns whether the line was written.
        """
        admitted = self._throttle.admit(key)
        if admitted is None:
            return False
        skipped, _ = admitted
        if skipped:
            message += " (and %d more like it since the last such line)"
            args = (*args, skipped)
        self.logger.log(level, message, *args, stacklevel=2)
        return True
