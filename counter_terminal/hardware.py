"""The panel's parts on gpiozero: the pin factory, debounced buttons, lights and a buzzer.

Layers as in gpiozero itself: :func:`pin_factory` makes the pins' backend from the
settings (``lgpio`` or ``native`` on a Pi, ``mock`` for simulated pins that run on any
machine), and every part here takes that factory as the keyword-only ``pin_factory=``,
as gpiozero's devices do.

:class:`Buttons` reads gpiozero :class:`~gpiozero.DigitalInputDevice` inputs (without
``bounce_time``) through the project's own :class:`~.gestures.ButtonLogic` (a press
counts at its first edge, its bounces are ignored), in one
thread that reports each button's gestures in order (and beats a
:class:`~common.liveness.Heartbeat`, so a hung button thread stops the watchdog).
:class:`Light` is an LED with a steady mode (off, on, slow blink) and short flashes on
top; :class:`Beeper` an optional buzzer.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero import LED, Buzzer, Device, DigitalInputDevice
from gpiozero.exc import GPIOZeroError

from common.errors import PoradovnikError
from common.liveness import BEAT_S, Heartbeat
from counter_terminal.gestures import ButtonLogic, Event

__all__ = ["Beeper", "Buttons", "Light", "LightMode", "pin_factory"]

log = logging.getLogger(__name__)

PinFactory = Any
"""A gpiozero pin factory (gpiozero has no type hints)."""

_FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
    "mock": ("gpiozero.pins.mock", "MockFactory"),
}


def pin_factory(name: str) -> PinFactory:
    """The pin factory ``name`` (``auto``, ``lgpio``, ``native`` or ``mock``).

    ``auto`` is gpiozero's own choice (``GPIOZERO_PIN_FACTORY``, else the first that
    works). Raises :class:`PoradovnikError` when the pins cannot be had here.
    """
    try:
        if name == "auto":
            Device.ensure_pin_factory()
            return Device.pin_factory
        module_name, class_name = _FACTORIES[name]
        module = __import__(module_name, fromlist=[class_name])
        return getattr(module, class_name)()
    except KeyError:
        raise PoradovnikError(f"unknown pin factory {name!r}") from None
    except (ImportError, OSError, RuntimeError, GPIOZeroError) as exc:
        raise PoradovnikError(
            f"cannot open the GPIO pins with the {name!r} pin factory ({exc}); on a "
            'machine without GPIO set [counter] pin_factory = "mock"'
        ) from None


def _device(make: Callable[[], Any], what: str) -> Any:
    """Make a gpiozero device, or say which part could not be set up and why."""
    try:
        return make()
    except (GPIOZeroError, OSError, ValueError) as exc:
        raise PoradovnikError(f"cannot set up {what}: {exc}") from None


class Buttons:
    """Debounced buttons that report gestures, each in order, from one thread of their own.

    Once started, ``on_event(name, event)`` is called for each gesture of the button
    ``name``, from this object's thread: it may take a moment (writing to the outbox)
    without losing edges, which are recorded meanwhile. ``debounce_s`` applies to every
    button.
    """

    def __init__(
        self,
        *,
        debounce_s: float,
        pull_up: bool,
        pin_factory: PinFactory,
        name: str = "buttons",
    ) -> None:
        self._on_event: Callable[[str, Event], None] | None = None
        self._debounce_s = debounce_s
        self._pull_up = pull_up
        self._factory = pin_factory
        self._devices: dict[str, Any] = {}
        self._logic: dict[str, ButtonLogic] = {}
        self._due: list[tuple[str, Event]] = []
        self._changed = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.heartbeat = Heartbeat(f"{name} thread")
        """Beaten by the button thread at least every :data:`~common.liveness.BEAT_S`,
        idle or not; silent while it hangs (in ``on_event``, say)."""

    def add(self, name: str, pin: int, *, long_press_s: float | None = None) -> None:
        """Watch the button ``name`` on GPIO ``pin``; with ``long_press_s``, short and long."""
        device = _device(
            lambda: DigitalInputDevice(pin, pull_up=self._pull_up, pin_factory=self._factory),
            f"the {name} button on GPIO{pin}",
        )
        logic = ButtonLogic(debounce_s=self._debounce_s, long_press_s=long_press_s)
        with self._changed:
            self._devices[name] = device
            self._logic[name] = logic
        device.when_activated = lambda: self._edge(name, True)
        device.when_deactivated = lambda: self._edge(name, False)
        if device.is_active:  # held (or stuck) at start: counts only once released
            log.warning("the %s button on GPIO%d is pressed at start", name, pin)

    @property
    def names(self) -> tuple[str, ...]:
        """The buttons watched, by name."""
        return tuple(self._devices)

    def pin(self, name: str) -> Any:
        """The gpiozero pin of the button ``name`` (a mock pin can be pressed with it)."""
        return self._devices[name].pin

    def wait_pressed(self, name: str, pressed: bool, timeout: float) -> bool:
        """Wait until the button's debounced state is ``pressed``; ``False`` on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._logic[name].pressed is pressed, timeout)

    def start(self, on_event: Callable[[str, Event], None]) -> None:
        """Start reporting gestures to ``on_event``."""
        self._on_event = on_event
        self.heartbeat.beat()  # its time to start counts from now, not from __init__
        self._thread.start()

    def close(self) -> None:
        """Stop reporting and release the pins."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for device in self._devices.values():
            with contextlib.suppress(GPIOZeroError):
                device.close()

    def _edge(self, name: str, pressed: bool) -> None:
        """A gpiozero callback: the contact of ``name`` changed (any thread)."""
        now = time.monotonic()
        with self._changed:
            logic = self._logic[name]
            self._due.extend((name, event) for event in logic.feed(pressed, now))
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    self.heartbeat.beat()
                    if self._closing:
                        return
                    now = time.monotonic()
                    before = [logic.pressed for logic in self._logic.values()]
                    for name, logic in self._logic.items():
                        self._due.extend((name, event) for event in logic.poll(now))
                    if before != [logic.pressed for logic in self._logic.values()]:
                        self._changed.notify_all()  # for wait_pressed()
                    if self._due:
                        break
                    deadlines = [
                        d for logic in self._logic.values() if (d := logic.deadline()) is not None
                    ]
                    # A millisecond at least: rounding must not make this spin; a beat
                    # at least every BEAT_S.
                    wait = min([*deadlines, now + BEAT_S]) - now
                    self._changed.wait(max(wait, 0.001))
                due, self._due = self._due, []
            for name, event in due:
                try:
                    if self._on_event is not None:
                        self._on_event(name, event)
                except Exception:
                    log.exception("handling the %s button failed", name)


class LightMode(enum.Enum):
    """A light's steady state."""

    OFF = "off"
    ON = "on"
    BLINK = "blink"
    """Slow blinking: 0.5 s on, 1.5 s off."""


class Light:
    """An LED with a steady :class:`LightMode` and short flashes over it.

    ``on_idle`` is called when the last flash has ended and the steady mode is back.
    """

    def __init__(
        self,
        pin: int,
        *,
        pin_factory: PinFactory,
        name: str = "light",
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._led = _device(lambda: LED(pin, pin_factory=pin_factory), f"the {name} on GPIO{pin}")
        self._mode = LightMode.OFF
        self._lock = threading.Lock()
        self._flash: threading.Timer | None = None
        self._on_idle = on_idle

    @property
    def pin(self) -> Any:
        """The gpiozero pin (a mock pin records its states)."""
        return self._led.pin

    @property
    def flashing(self) -> bool:
        """Whether a flash is under way."""
        return self._flash is not None

    @property
    def mode(self) -> LightMode:
        """The steady mode."""
        return self._mode

    def set(self, mode: LightMode) -> None:
        """Show ``mode`` (after the flash in progress, if any)."""
        with self._lock:
            if mode is self._mode:
                return
            self._mode = mode
            if self._flash is None:
                self._apply()

    def flash(self, times: int, *, on_s: float = 0.15, off_s: float = 0.15) -> None:
        """Flash ``times`` times, then show the steady mode again."""
        with self._lock:
            if self._flash is not None:
                self._flash.cancel()
            self._led.blink(on_time=on_s, off_time=off_s, n=times, background=True)
            self._flash = threading.Timer(times * (on_s + off_s), self._end_flash)
            self._flash.daemon = True
            self._flash.start()

    def close(self) -> None:
        """Turn the light off and release its pin."""
        with self._lock:
            if self._flash is not None:
                self._flash.cancel()
                self._flash = None
        with contextlib.suppress(GPIOZeroError):
            self._led.close()

    def _end_flash(self) -> None:
        with self._lock:
            if self._flash is None or threading.current_thread() is not self._flash:
                return  # cancelled, or replaced by a newer flash
            self._flash = None
            self._apply()
        if self._on_idle is not None:
            self._on_idle()

    def _apply(self) -> None:
        if self._mode is LightMode.ON:
            self._led.on()
        elif self._mode is LightMode.BLINK:
            self._led.blink(on_time=0.5, off_time=1.5, background=True)
        else:
            self._led.off()


class Beeper:
    """An active buzzer that beeps patterns."""

    def __init__(self, pin: int, *, pin_factory: PinFactory) -> None:
        self._buzzer = _device(
            lambda: Buzzer(pin, pin_factory=pin_factory), f"the buzzer on GPIO{pin}"
        )

    @property
    def pin(self) -> Any:
        """The gpiozero pin (a mock pin records its states)."""
        return self._buzzer.pin

    def beep(self, times: int, *, on_s: float, off_s: float = 0.1) -> None:
        """Beep ``times`` times in the background."""
        self._buzzer.beep(on_time=on_s, off_time=off_s, n=times, background=True)

    def close(self) -> None:
        """Silence the buzzer and release its pin."""
        with contextlib.suppress(GPIOZeroError):
            self._buzzer.close()
