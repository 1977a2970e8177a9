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

__all__ = ["ThrottledLog"]


class ThrottledLog:
    """Writes to ``logger`` at most once per ``interval_s`` per key.

    A key names the kind of event (say, a refusal code and the sender). Events of a key
    within the interval after a logged one are only counted; the next one logged after
    the interval says how many were left out. At most ``max_keys`` keys are
    remembered (the oldest are forgotten first), so senders choosing new keys cannot
    grow it without bound. Thread-safe.
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
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        """By key: when it was last logged, and how many events were left out since."""

    def log(self, level: int, key: Hashable, message: str, *args: object) -> bool:
        """Log ``message % args`` at ``level`` unless ``key`` was logged within the interval.

        Returns whether the line was written.
        """
        now = self._clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.interval_s:
                self._seen[key] = (last[0], last[1] + 1)
                return False
            skipped = last[1] if last is not None else 0
            self._seen[key] = (now, 0)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
        if skipped:
            message += " (and %d more like it since the last such line)"
            args = (*args, skipped)
        self.logger.log(level, message, *args, stacklevel=2)
        return True
