"""Simulated clerks: they press a terminal's buttons on gpiozero's mock pins.

With ``[counter] pin_factory = "mock"`` the panel runs on any machine; these clerks
then work its buttons the way fingers would: the pin goes to the pressed level, stays
there until the panel has taken the press (or, for a long press, until the
press took effect), and goes back. Everything downstream (debounce, the desk's rules,
the outbox, the hub) is the real thing. The tests, the benchmark and the demo use them;
``[counter] simulate_clerks_s`` lets ``poradovnik counter`` run them by itself.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from counter_terminal.desk import CounterDesk

__all__ = ["PressFailed", "SimulatedClerks"]

log = logging.getLogger(__name__)

WEIGHTS = {"next": 70, "recall": 10, "no_show": 4, "done": 6, "transfer": 4, "pause": 3, "park": 3}
"""How often a simulated clerk presses each button, relatively."""


class PressFailed(RuntimeError):
    """A simulated press was not taken by the panel in time."""


class SimulatedClerks:
    """Clerks at the given desks (by counter id), pressing mock pins.

    ``timeout_s`` bounds each wait for the panel to take a press.
    """

    def __init__(
        self,
        desks: Mapping[str, CounterDesk],
        *,
        rng: random.Random | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.desks = desks
        self.timeout_s = timeout_s
        self._rng = rng if rng is not None else random.Random()

    def press(self, counter: str, button: str, *, hold: bool = False) -> None:
        """Press ``button`` at ``counter`` and let go once the desk has handled it.

        ``hold`` keeps it pressed until the long press took effect (Transfer).
        Raises :class:`PressFailed` if the panel does not take it in time, and
        :class:`KeyError` for a counter or a button that is not fitted.
        """
        desk = self.desks[counter]
        buttons = desk.panel.buttons
        pin = desk.panel.button_pin(button)
        pull_up = desk.config.buttons_pull_up
        down, up = (pin.drive_low, pin.drive_high) if pull_up else (pin.drive_high, pin.drive_low)
        with desk.changed:
            before = desk.gestures
        down()
        try:
            if not buttons.wait_pressed(button, True, self.timeout_s):
                raise PressFailed(f"counter {counter}: the {button} press was not taken")
            if hold:
                self._handled(desk, before)
        finally:
            up()
        if not buttons.wait_pressed(button, False, self.timeout_s):
            raise PressFailed(f"counter {counter}: the {button} release was not taken")
        self._handled(desk, before)

    def _handled(self, desk: CounterDesk, before: int) -> None:
        with desk.changed:
            if not desk.changed.wait_for(lambda: desk.gestures > before, self.timeout_s):
                raise PressFailed(f"counter {desk.counter}: the press was not handled")

    def transfer(self, counter: str, position: int) -> None:
        """Pick the ``position``-th service (from 1) with short presses, then hold Transfer."""
        for _ in range(position):
            self.press(counter, "transfer")
        self.press(counter, "transfer", hold=True)

    def step(self) -> None:
        """One clerk presses one button (mostly Next), as the weights say."""
        counter = self._rng.choice(sorted(self.desks))
        fitted = set(self.desks[counter].panel.buttons.names)
        choices = [b for b in WEIGHTS if b in fitted]
        button = self._rng.choices(choices, [WEIGHTS[b] for b in choices])[0]
        if button == "transfer":
            self.transfer(counter, self._rng.randint(1, 3))
        else:
            self.press(counter, button)

    def run(self, stop: threading.Event, pace_s: float) -> None:
        """Press a button about every ``pace_s`` seconds until ``stop`` is set."""
        while not stop.wait(self._rng.expovariate(1 / pace_s)):
            try:
                self.step()
            except PressFailed as exc:
                log.warning("simulated clerk: %s", exc)
