"""The optional panel display of a counter: the current ticket and the queue length.

Behind one small interface, :class:`PanelDisplay`, two backends chosen by ``[counter]
display``: :class:`LcdDisplay`, an HD44780 character LCD on an I2C backpack through
RPLCD (the office's letters drawn as :mod:`.charset` says), and
:class:`SimulatedDisplay`, which keeps its text and logs it (for a laptop, a demo and
the tests).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from common.errors import PoradovnikError
from counter_terminal.charset import GLYPHS, compose

__all__ = [
    "LcdDisplay",
    "PanelDisplay",
    "SimulatedDisplay",
    "fit",
]

log = logging.getLogger(__name__)


def fit(lines: Sequence[str], cols: int, rows: int) -> tuple[str, ...]:
    """``lines`` cut to ``cols`` characters and padded to exactly ``rows`` lines."""
    shown = [line[:cols] for line in lines[:rows]]
    return tuple(shown + [""] * (rows - len(shown)))


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

    ``charmap`` is its character ROM (``A00`` or ``A02``, as RPLCD names them); ``lcd``
    makes the RPLCD ``CharLCD`` (by default RPLCD's own I2C one). Letters the ROM lacks
    are drawn in its 8 custom characters (:func:`~.charset.compose`). A write that fails
    (a loose cable) is logged once and tried again, custom characters and all, with the
    next change.
    """

    def __init__(
        self,
        *,
        address: int,
        port: int = 1,
        expander: str = "PCF8574",
        cols: int = 16,
        rows: int = 2,
        charmap: Literal["A00", "A02"] = "A00",
        lcd: Callable[..., Any] | None = None,
    ) -> None:
        self.cols = cols
        self.rows = rows
        self.charmap = charmap
        self._shown: tuple[str, ...] | None = None
        self._slots: dict[str, int] = {}
        """The drawn letters the LCD holds, by letter: their custom character."""
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
                charmap=charmap,
                auto_linebreaks=False,
            )
        except (OSError, ValueError) as exc:
            raise PoradovnikError(
                f"cannot open the LCD at I2C address {address:#04x} on /dev/i2c-{port}: {exc}"
            ) from None
        self._rom: dict[str, int] = self._lcd.codec.codec.encoding_table
        """What the ROM shows, as RPLCD's codec for ``charmap`` encodes it."""

    def show(self, lines: Sequence[str]) -> None:
        """Write the custom characters and lines that changed.

        A failure is logged once until a write succeeds.
        """
        shown, slots = compose(
            lines,
            cols=self.cols,
            rows=self.rows,
            rom=self._rom,
            cyrillic_rom=self.charmap == "A02",
            slots=self._slots,
        )
        if shown == self._shown and slots == self._slots:
            return
        try:
            for letter, slot in slots.items():
                if self._slots.get(letter) != slot:
                    self._lcd.create_char(slot, GLYPHS[letter])
            self._slots = slots
            for row, line in enumerate(shown):
                if self._shown is None or self._shown[row] != line:
                    self._lcd.cursor_pos = (row, 0)
                    self._lcd.write_string(line.ljust(self.cols))
        except OSError as exc:
            if not self._failing:
                log.error("the LCD does not answer: %s", exc)
            self._failing = True
            self._shown = None
            self._slots = {}  # it may have lost power, and its custom characters
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
