"""How every role's process ends cleanly: SIGTERM (systemd's stop) or SIGINT (Ctrl+C)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["stop_on_signals"]

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals(wake: Callable[[], None] | None = None) -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so the main loop can end cleanly.

    ``wake`` is called too, for a main loop that sleeps on something else than the
    event (the lobby display's queue of messages).
    """
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
        if wake is not None:
            wake()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
