"""One counter's panel as a whole: its buttons, three status lights, buzzer and display.

:class:`CounterPanel` is the composite of the parts in :mod:`.hardware` for one
``[[counter.panels]]`` table, as gpiozero composes devices into boards: it knows
nothing of the queue. The desk (:mod:`.desk`) tells it what to show with a
:class:`PanelView` and which signal to give; its buttons report to the desk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.counter_settings import BUTTONS, RATING_BUTTONS, CounterSettings, PanelSettings
from counter_terminal.gestures import Event
from counter_terminal.hardware import Beeper, Buttons, Light, LightMode, PinFactory
from counter_terminal.lcd import PanelDisplay

__all__ = ["CounterPanel", "PanelView"]

LONG_PRESS_BUTTONS = frozenset({"transfer"})
"""Buttons that tell a short press from a long one; the others act when pressed."""


@dataclass(frozen=True, slots=True)
class PanelView:
    """What a panel shows: its lights' steady modes and its display's lines."""

    ready: LightMode
    serving: LightMode
    offline: LightMode
    lines: tuple[str, ...]


class CounterPanel:
    """The fitted parts of one counter's panel; parts not in the settings are left out.

    ``display`` is the panel display's backend, or ``None``. ``pin_factory`` is the
    gpiozero pin factory every part is made on.
    """

    def __init__(
        self,
        panel: PanelSettings,
        *,
        config: CounterSettings,
        pin_factory: PinFactory,
        display: PanelDisplay | None = None,
    ) -> None:
        self.counter = panel.counter
        self.display = display
        self._idle = threading.Condition()
        self.buttons = Buttons(
            debounce_s=config.debounce_ms / 1000,
            pull_up=config.buttons_pull_up,
            pin_factory=pin_factory,
            name=f"buttons-{panel.counter}",
        )
        self.lights: dict[str, Light] = {}
        self.beeper: Beeper | None = None
        try:
            for name in (*BUTTONS, *RATING_BUTTONS):
                pin = getattr(panel, name)
                if pin is not None:
                    long_press = config.long_press_s if name in LONG_PRESS_BUTTONS else None
                    self.buttons.add(name, pin, long_press_s=long_press)
            for key in ("ready_led", "serving_led", "offline_led"):
                pin = getattr(panel, key)
                if pin is not None:
                    name = key.removesuffix("_led")
                    self.lights[name] = Light(
                        pin, pin_factory=pin_factory, name=f"{name} light", on_idle=self._flashed
                    )
            if panel.buzzer is not None:
                self.beeper = Beeper(panel.buzzer, pin_factory=pin_factory)
        except BaseException:
            self.close()
            raise

    @property
    def uses_queues(self) -> bool:
        """Whether the office's queues matter to this panel.

        A display shows waiting counts and transfer targets; a Transfer button picks
        among the services.
        """
        return self.display is not None or "transfer" in self.buttons.names

    def start(self, on_event: Callable[[str, Event], None]) -> None:
        """Start reporting the buttons' gestures to ``on_event(button, event)``."""
        self.buttons.start(on_event)

    def button_pin(self, name: str) -> Any:
        """The gpiozero pin of the button ``name`` (``next``, ``transfer``…)."""
        return self.buttons.pin(name)

    def show(self, view: PanelView) -> None:
        """Show ``view`` on the lights and the display."""
        for name, mode in (("ready", view.ready), ("serving", view.serving)):
            if name in self.lights:
                self.lights[name].set(mode)
        if "offline" in self.lights:
            self.lights["offline"].set(view.offline)
        if self.display is not None:
            self.display.show(view.lines)

    def refused(self) -> None:
        """A press was not sent (too soon, nothing to act on): one long beep, one red flash."""
        self._signal("offline", 1, on_s=0.4)
        if self.beeper is not None:
            self.beeper.beep(1, on_s=0.4)

    def failed(self) -> None:
        """The hub refused a command: three short beeps and three red flashes."""
        self._signal("offline", 3, on_s=0.12)
        if self.beeper is not None:
            self.beeper.beep(3, on_s=0.12)

    def choice(self, position: int) -> None:
        """The ``position``-th service (from 1) is chosen: the yellow light flashes that often."""
        self._signal("serving", position, on_s=0.2, off_s=0.25)

    def wait_until_steady(self, timeout: float) -> bool:
        """Wait until no light is flashing (a test's synchronisation); ``False`` on timeout."""
        with self._idle:
            return self._idle.wait_for(
                lambda: not any(light.flashing for light in self.lights.values()), timeout
            )

    def close(self) -> None:
        """Release every part."""
        self.buttons.close()
        for light in self.lights.values():
            light.close()
        if self.beeper is not None:
            self.beeper.close()
        if self.display is not None:
            self.display.close()

    def _signal(self, light: str, times: int, *, on_s: float, off_s: float = 0.15) -> None:
        if light in self.lights:
            self.lights[light].flash(times, on_s=on_s, off_s=off_s)

    def _flashed(self) -> None:
        with self._idle:
            self._idle.notify_all()
