"""The optional panel display of a counter: the current ticket and the queue length.

Behind one small interface, :class:`PanelDisplay`, two backends chosen by ``[counter]
display``: :class:`LcdDisplay`, an HD44780 character LCD on an I2C backpack through
RPLCD, and :class:`SimulatedDisplay`, which keeps its text and logs it (for a laptop, a
demo and the tests).
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from common.errors import PoradovnikError

__all__ = [
    "LcdDisplay",
    "PanelDisplay",
    "SimulatedDisplay",
    "fit",
    "to_lcd_charset",
]

log = logging.getLogger(__name__)


def fit(lines: Sequence[str], cols: int, rows: int) -> tuple[str, ...]:
    """``lines`` cut to ``cols`` characters and padded to exactly ``rows`` lines."""
    shown = [line[:cols] for line in lines[:rows]]
    return tuple(shown + [""] * (rows - len(shown)))


def to_lcd_charset(text: str) -> str:
    """``text`` as an HD44780 (ROM A00) can show it: accents dropped, others as ``?``."""
    folded = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "}" else "?" for c in plain)


class PanelDisplay(Protocol):
    """A counter's small display: a few short lines of text."""

    def show(self, lines: Sequence[str]) -> None:
        """Show ``lines`` (cut and padded to the display's size); must not raise."""

    def close(self) -> None:
        """Clear the display and release it."""


class SimulatedDisplay:
    """A display that keeps its lines in memory and logs each change."""

    def __init__(self, *, name: str, cols: int = 16, rows: int = 2) -> None:
        self.name = name
        self.cols = cols
        self.rows = rows
        self.lines: tuple[str, ...] = fit((), cols, rows)
        """What the display shows now."""
        self.changed = threading.Event()
        """Set whenever the lines change (clear it to wait for the next change)."""

    def show(self, lines: Sequence[str]) -> None:
        """Keep ``lines`` and log them when they differ from what is shown."""
        shown = fit(lines, self.cols, self.rows)
        if shown != self.lines:
            self.lines = shown
            log.info("%s display: %s", self.name, " | ".join(shown))
            self.changed.set()

    def close(self) -> None:
        """Clear the lines."""
        self.show(())


class LcdDisplay:
    """An HD44780 character LCD on an I2C port expander, through RPLCD.

    ``lcd`` makes the RPLCD ``CharLCD`` (by default RPLCD's own); a write that fails
    (a loose cable) is logged once and tried again with the next change.
    """

    def __init__(
        self,
        *,
        address: int,
        port: int = 1,
        expander: str = "PCF8574",
        cols: int = 16,
        rows: int = 2,
        lcd: Callable[..., Any] | None = None,
    ) -> None:
        self.cols = cols
        self.rows = rows
        self._shown: tuple[str, ...] | None = None
        self._failing = False
        if lcd is None:
            from RPLCD.i2c import CharLCD  # noqa: PLC0415 (only panels with an LCD need it)

            lcd = CharLCD
        try:
            self._lcd = lcd(
                i2c_expander=expander,
                address=address,
                port=port,
                cols=cols,
                rows=rows,
                charmap="A00",
                auto_linebreaks=False,
            )
        except (OSError, ValueError) as exc:
            raise PoradovnikError(
                f"cannot open the LCD at I2C address {address:#04x} on /dev/i2c-{port}: {exc}"
            ) from None

    def show(self, lines: Sequence[str]) -> None:
        """Write the lines that changed; log a failure once until a write succeeds."""
        shown = fit([to_lcd_charset(line) for line in lines], self.cols, self.rows)
        if shown == self._shown:
            return
        try:
            for row, line in enumerate(shown):
                if self._shown is None or self._shown[row] != line:
                    self._lcd.cursor_pos = (row, 0)
                    self._lcd.write_string(line.ljust(self.cols))
        except OSError as exc:
            if not self._failing:
                log.error("the LCD does not answer: %s", exc)
            self._failing = True
            self._shown = None
            return
        if self._failing:
            log.info("the LCD answers again")
        self._failing = False
        self._shown = shown

    def close(self) -> None:
        """Clear the LCD and release the I2C bus."""
        try:
            self._lcd.close(clear=True)
        except OSError as exc:
            log.debug("closing the LCD failed: %s", exc)
