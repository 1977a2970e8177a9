"""Logging for every role: one plain line per record on stderr, ``LEVEL logger: message``.

The devices run under systemd, whose journal adds the time, the host and the unit, so the
line carries none of them. When stderr is the journal (systemd sets ``JOURNAL_STREAM``),
each line also starts with a ``<N>`` syslog priority, which journald strips and keeps as
the entry's priority, so ``journalctl -p warning`` works.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from common.logthrottle import Throttle

__all__ = ["LineFormatter", "RepeatFilter", "setup_logging", "stderr_is_journal"]

_FORMAT = "%(levelname)s %(name)s: %(message)s"

# syslog priorities (sd-daemon.h) by the lowest logging level they cover.
_PRIORITIES = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY = 7


class LineFormatter(logging.Formatter):
    """Formats a record, traceback included, as one line; optionally with a journal priority."""

    def __init__(self, *, journal: bool = False) -> None:
        super().__init__(_FORMAT)
        self.journal = journal
        """Whether to start each line with ``<N>``, the record's syslog priority."""

    def format(self, record: logging.LogRecord) -> str:
        """Format *record* on one line: any line breaks become `` | ``."""
        text = " | ".join(line for line in super().format(record).splitlines() if line.strip())
        if not self.journal:
            return text
        priority = next((p for level, p in _PRIORITIES if record.levelno >= level), None)
        return f"<{_DEBUG_PRIORITY if priority is None else priority}>{text}"


class RepeatFilter(logging.Filter):
    """Lets a repeated warning or error through once per ``interval_s``, with a count.

    Under attack or when a resource runs out, one cause can raise the same record
    thousands of times a second (a full file table makes every accept fail). The first
    record of a kind passes; the same one (same logger, level and message) is then
    held back until ``interval_s`` have passed, and the next one to pass says how many
    were held back. Records below WARNING are never held back.
    """

    def __init__(
        self,
        interval_s: float = 10.0,
        *,
        kinds: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._throttle = Throttle(interval_s, max_keys=kinds, clock=clock)

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is shown; one shown after others were held back counts them."""
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        admitted = self._throttle.admit((record.name, record.levelno, message))
        if admitted is None:
            return False
        held, since_s = admitted
        if held:
            record.msg = f"{message} (and {held} more like it in the last {since_s:.0f} s)"
            record.args = None
        return True


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time, so redirections made later count."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def stderr_is_journal(env: Mapping[str, str] | None = None) -> bool:
    """Whether stderr is connected to the systemd journal (``$JOURNAL_STREAM`` matches it)."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(sys.stderr.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        # No such variable, or stderr has no file descriptor (redirected in tests).
        return False


_CHATTY_LIBRARIES = ("alembic",)


def setup_logging(level: str) -> None:
    """Send log records at *level* (DEBUG, INFO, WARNING, ERROR) and above to stderr.

    A warning or error repeated within 10 s is shown once, with a count
    (:class:`RepeatFilter`).

    Calling it again replaces the earlier setup instead of adding a second handler.
    Raises :class:`ValueError` for an unknown level.
    """
    name = level.strip().upper()
    numeric = logging.getLevelNamesMapping().get(name)
    if numeric is None:
        msg = f"unknown log level {level!r}; use DEBUG, INFO, WARNING or ERROR"
        raise ValueError(msg)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(LineFormatter(journal=stderr_is_journal()))
    handler.addFilter(RepeatFilter())
    root.addHandler(handler)
    root.setLevel(numeric)
    # Libraries' step-by-step chatter (Alembic lists every plugin it loads) only
    # shows when debugging; their warnings and errors always do.
    for chatty in _CHATTY_LIBRARIES:
        quiet = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
        logging.getLogger(chatty).setLevel(quiet)
    logging.captureWarnings(True)
