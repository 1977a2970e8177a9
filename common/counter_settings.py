"""``[counter]``: the settings of a counter panel: its buttons, lights and optional panel display.

It lives in :mod:`common` with the other sections, because :class:`~common.settings.Settings`
holds every role's section (the command line checks any device's file); like them, it
imports only pydantic, so no role's hardware libraries come with it.

One Pi can serve several counters: each ``[[counter.panels]]`` table maps one
counter's buttons, lights and buzzer to GPIO pins (BCM numbers, as printed on pinout
charts as ``GPIO17``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from common.section import Section

__all__ = ["BUTTONS", "LIGHTS", "RATING_BUTTONS", "CounterSettings", "PanelSettings"]

Gpio = Annotated[int, Field(ge=0, le=27)]
"""A GPIO of the Pi's 40-pin header, by its BCM number (GPIO0 … GPIO27)."""

CounterId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
"""A counter's id as the hub knows it (it goes into MQTT topics)."""

BUTTONS = ("next", "recall", "no_show", "done", "transfer", "park", "pause")
"""The buttons a panel can have, by their key in ``[[counter.panels]]``."""

RATING_BUTTONS = {"rate_good": 5, "rate_neutral": 3, "rate_bad": 1}
"""The citizen's rating buttons a panel can have, by their key, with the mark each sends."""

LIGHTS = ("ready_led", "serving_led", "offline_led")
"""The status lights a panel can have, by their key in ``[[counter.panels]]``."""


class PanelSettings(Section):
    """``[[counter.panels]]``: one counter's buttons, lights and buzzer on this Pi."""

    counter: CounterId
    """The counter these buttons act for: its id on the hub (the panel's broker account
    must be allowed to act for it)."""

    next: Gpio
    """GPIO of the Next button: finishes the current citizen and calls the next one."""

    recall: Gpio | None = None
    """GPIO of the Recall button: calls the current ticket again; none if not fitted."""

    no_show: Gpio | None = None
    """GPIO of the No-show button: the called citizen did not come; none if not fitted."""

    done: Gpio | None = None
    """GPIO of the Done button: finishes the current citizen without calling anyone."""

    transfer: Gpio | None = None
    """GPIO of the Transfer button: each short press picks the next service, a long press
    sends the current citizen there; none if not fitted."""

    park: Gpio | None = None
    """GPIO of the Park button: sets the current citizen aside; none if not fitted."""

    pause: Gpio | None = None
    """GPIO of the Pause/Resume button: pauses a free counter, or opens it again."""

    rate_good: Gpio | None = None
    """GPIO of the citizen's "good" rating button (a 5 of 5 for the visit just finished
    at this counter); none if not fitted."""

    rate_neutral: Gpio | None = None
    """GPIO of the citizen's "neutral" rating button (3 of 5); none if not fitted."""

    rate_bad: Gpio | None = None
    """GPIO of the citizen's "bad" rating button (1 of 5); none if not fitted."""

    ready_led: Gpio | None = None
    """GPIO of the green light: lit while the counter is open and free, blinking slowly
    while it is paused."""

    serving_led: Gpio | None = None
    """GPIO of the yellow light: lit while the counter has a citizen called or served."""

    offline_led: Gpio | None = None
    """GPIO of the red light: lit while the hub or the broker cannot be reached; it also
    blinks when the hub refuses a press."""

    buzzer: Gpio | None = None
    """GPIO of an active buzzer that beeps when a press is refused; none for no buzzer."""

    lcd_address: int = Field(default=0x27, ge=0x03, le=0x77)
    """I2C address of this counter's character LCD (with ``display = "lcd"``); PCF8574
    backpacks are usually at 0x27 or 0x3F."""

    def pins(self) -> dict[str, int]:
        """Every fitted part's GPIO, by its key."""
        keys = (*BUTTONS, *RATING_BUTTONS, *LIGHTS, "buzzer")
        return {key: pin for key in keys if (pin := getattr(self, key)) is not None}


class CounterSettings(Section):
    """``[counter]``: a counter panel's buttons, lights and panel display (counter only)."""

    pin_factory: Literal["auto", "lgpio", "native", "mock"] = "auto"
    """Where the GPIO pins come from: "lgpio" (Raspberry Pi OS bookworm, Pi 4 and 5),
    "native" (gpiozero's own, Pi 4 and older), "mock" (simulated pins, for a laptop or
    a demo), or "auto" (gpiozero picks, honouring GPIOZERO_PIN_FACTORY)."""

    panels: tuple[PanelSettings, ...] = ()
    """One table per counter served from this Pi, with the GPIOs of its parts."""

    buttons_pull_up: bool = True
    """Whether the buttons connect their GPIO to ground (the Pi's internal pull-up holds
    it high); false if they connect it to 3.3 V (internal pull-down)."""

    debounce_ms: int = Field(default=25, ge=1, le=500)
    """The bounce time: a button's press counts at its first edge, and changes within this
    long of a counted one are bounces (Transfer's release must also last this long)."""

    long_press_s: float = Field(default=1.0, ge=0.3, le=10.0)
    """Holding the Transfer button this long sends the citizen to the chosen service."""

    next_guard_s: float = Field(default=5.0, ge=0.0, le=120.0)
    """A second Next within this many seconds of the first one, or while the first one
    is not yet answered, is refused (a beep), so no citizen is skipped by accident."""

    transfer_choice_s: float = Field(default=10.0, ge=2.0, le=120.0)
    """A service picked with the Transfer button is forgotten after this long without a
    press."""

    display: Literal["none", "lcd", "simulated"] = "none"
    """Panel display per counter showing the current ticket and the queue length: "lcd"
    (HD44780 character LCD on I2C), "simulated" (kept in memory and logged), or "none"."""

    lcd_port: int = Field(default=1, ge=0, le=20)
    """I2C bus number of the LCDs (/dev/i2c-N); 1 on every current Pi."""

    lcd_expander: Literal["PCF8574", "MCP23008", "MCP23017"] = "PCF8574"
    """The I2C port expander on the LCDs' backpacks."""

    lcd_cols: int = Field(default=16, ge=8, le=40)
    """Characters per line of the LCDs."""

    lcd_rows: int = Field(default=2, ge=2, le=4)
    """Lines of the LCDs."""

    lcd_charmap: Literal["A00", "A02"] = "A00"
    """The LCDs' character ROM (its code is on the controller chip, e.g. HD44780UA00):
    ``A00`` (ASCII and Japanese; Ukrainian is romanised) or ``A02`` (European letters and
    Cyrillic capitals; Ukrainian is shown in capitals). Letters the ROM lacks are drawn
    as custom characters, 8 at most on one screen."""

    simulate_clerks_s: float | None = Field(default=None, gt=0.0)
    """With pin_factory = "mock": simulated clerks press a button on a random counter
    about every this many seconds (for a demo); none for no simulated clerks."""

    @model_validator(mode="after")
    def _check_panels(self) -> CounterSettings:
        counters = [panel.counter for panel in self.panels]
        twice = sorted({c for c in counters if counters.count(c) > 1})
        if twice:
            raise ValueError(f"counter {', '.join(twice)} has more than one panel")
        used: dict[int, str] = {}
        for panel in self.panels:
            for key, pin in panel.pins().items():
                where = f"counter {panel.counter} {key}"
                if pin in used:
                    raise ValueError(f"GPIO{pin} is used twice: by {used[pin]} and by {where}")
                used[pin] = where
        if self.display == "lcd":
            addresses = [panel.lcd_address for panel in self.panels]
            if len(set(addresses)) != len(addresses):
                raise ValueError("two counters' LCDs have the same lcd_address")
        if self.simulate_clerks_s is not None and self.pin_factory != "mock":
            raise ValueError('simulate_clerks_s needs pin_factory = "mock"')
        return self
