"""The LED boards of a display, kept showing what they should, in a thread of their own.

:class:`LedBoards` remembers what each board should show, blinks a newly called number
for a while, and sends each board only what changed, through a
:class:`~display.boards.bus.BoardBus`. A board that stops acknowledging is
reported (``on_health``) and tried again every ``probe_s``; when it answers again it gets
its brightness and its text again (it may have lost power).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.display_settings import BoardSettings
from display.boards.bus import BoardBus
from display.boards.protocols import Command

__all__ = ["LedBoards"]

log = logging.getLogger(__name__)


@dataclass
class _Board:
    settings: BoardSettings
    text: str = ""
    blink_until: float | None = None
    sent: Command | None = None
    """The last command it acknowledged (``None``: it needs its brightness first)."""
    online: bool | None = None
    """``None`` until it was first heard of (or not)."""
    next_try: float = 0.0

    def wanted(self, now: float) -> Command:
        if not self.text:
            return Command("clear")
        blinking = self.blink_until is not None and now < self.blink_until
        return Command("blink" if blinking else "show", self.text[: self.settings.width])


class LedBoards:
    """Drives ``boards`` on ``bus``, each showing what it should.

    ``on_health(address, problem)`` (``problem`` ``None``: fine) is told when a board
    starts or stops acknowledging; it runs in the boards' thread.
    """

    def __init__(
        self,
        bus: BoardBus,
        boards: Sequence[BoardSettings],
        *,
        blink_s: float = 5.0,
        probe_s: float = 15.0,
        on_health: Callable[[int, str | None], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus
        self.blink_s = blink_s
        self.probe_s = probe_s
        self.on_health = on_health
        self.clock = clock
        self._boards = {b.address: _Board(b) for b in boards}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def addresses(self) -> list[int]:
        """The boards' addresses."""
        return list(self._boards)

    def for_counter(self, counter: str) -> list[int]:
        """The addresses of the boards of ``counter``."""
        return [a for a, b in self._boards.items() if b.settings.counter == counter]

    def hall(self) -> list[int]:
        """The addresses of the hall boards."""
        return [a for a, b in self._boards.items() if b.settings.hall]

    def show(self, address: int, text: str, *, blink: bool = False) -> None:
        """Have the board at ``address`` show ``text`` (``""``: dark), blinking it first.

        Showing the same text again without ``blink`` leaves a blink running.
        """
        with self._lock:
            board = self._boards[address]
            if blink and text:
                board.text, board.blink_until = text, self.clock() + self.blink_s
            elif text != board.text:
                board.text, board.blink_until = text, None
        self._wake.set()

    def start(self) -> None:
        """Start the boards' thread; it greets each board with its brightness."""
        if self._thread is None and self._boards:
            self._thread = threading.Thread(target=self._run, name="led-boards", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the boards' thread (the boards keep showing what they show)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wake_at = self._update()
            except Exception:
                log.exception("driving the LED boards failed")
                wake_at = self.clock() + self.probe_s
            self._wake.wait(None if wake_at is None else max(0.0, wake_at - self.clock()))

    def _update(self) -> float | None:
        """Send every board what changed; return when to look again (``None``: on news)."""
        wake: list[float] = []
        for address, board in self._boards.items():
            if self._stop.is_set():
                return None
            now = self.clock()
            with self._lock:
                wanted = board.wanted(now)
                if board.blink_until is not None and now < board.blink_until:
                    wake.append(board.blink_until)
            if board.online is False and now < board.next_try:
                wake.append(board.next_try)
                continue
            if wanted == board.sent:
                continue
            problem = self._deliver(address, board, wanted)
            if problem is None:
                board.sent = wanted
            else:
                board.sent = None
                board.next_try = now + self.probe_s
                wake.append(board.next_try)
            self._health(address, board, problem)
        return min(wake) if wake else None

    def _deliver(self, address: int, board: _Board, wanted: Command) -> str | None:
        if board.sent is None:  # first contact, or back after a fault
            level = Command("brightness", level=board.settings.brightness)
            problem = self.bus.send(address, level)
            if problem is not None:
                return problem
        return self.bus.send(address, wanted)

    def _health(self, address: int, board: _Board, problem: str | None) -> None:
        online = problem is None
        if board.online is online:
            return
        board.online = online
        if online:
            log.info("LED board %d answers", address)
        else:
            log.warning("LED board %d does not acknowledge: %s", address, problem)
        if self.on_health is not None:
            self.on_health(address, problem)
