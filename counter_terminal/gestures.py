"""Debounce and long press of one button: a small state machine fed with (level, time).

Pure logic, no threads, no clock: :meth:`ButtonLogic.feed` takes each change of the
raw contact with the time it happened, :meth:`ButtonLogic.poll` is called when time
has passed (at :meth:`ButtonLogic.deadline` at the latest), and both return the
gestures that became certain. The tests drive it with made-up timestamps.

**Debounce.** A change of the contact counts only once the contact has stayed at the
new level for ``debounce_s``: bounces while it closes or opens, and short spikes a
long cable picks up, never count as presses. The press is dated to when the contact
first reached the level it then kept. (gpiozero's ``bounce_time`` is not used: it only
drops edges close to the previous one, and its mock pins ignore it.)

**Long press.** A button with ``long_press_s`` reports :attr:`Gesture.LONG` as soon as
it has been held that long (the clerk feels it take effect without letting go), and
:attr:`Gesture.SHORT` on release when it was let go earlier. A button without one
reports :attr:`Gesture.PRESS` the moment its press is certain: no waiting for the
release, so Next calls at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ButtonLogic", "Event", "Gesture"]


class Gesture(enum.Enum):
    """What a clerk did with a button."""

    PRESS = "press"
    """A press of a button without long press: reported when the press is certain."""
    SHORT = "short"
    """A press shorter than the long press, reported at the release."""
    LONG = "long"
    """A press held for the long press time, reported while still held."""


@dataclass(frozen=True, slots=True)
class Event:
    """A gesture and when it happened (the same clock as the levels fed in)."""

    gesture: Gesture
    at: float


class ButtonLogic:
    """The debounce and long press of one button; see the module's description.

    ``debounce_s`` is how long the contact must stay still; ``long_press_s``, if given,
    makes the button report short and long presses instead of plain presses. Times are
    seconds on any monotonic clock; they must not go backwards.
    """

    def __init__(self, *, debounce_s: float, long_press_s: float | None = None) -> None:
        if debounce_s <= 0:
            raise ValueError("debounce_s must be positive")
        if long_press_s is not None and long_press_s <= debounce_s:
            raise ValueError("long_press_s must be longer than debounce_s")
        self.debounce_s = debounce_s
        self.long_press_s = long_press_s
        self.pressed = False
        """The debounced state: whether the button is held down."""
        self._raw = False
        self._raw_since = 0.0
        self._pressed_at = 0.0
        self._long_done = False

    def feed(self, pressed: bool, at: float) -> list[Event]:
        """The contact is now ``pressed`` (or not), since ``at``; returns what became certain.

        A level equal to the previous one is harmless (a repeated report).
        """
        events = self.poll(at)
        if pressed != self._raw:
            self._raw = pressed
            self._raw_since = at
        return events

    def poll(self, now: float) -> list[Event]:
        """Time is now ``now``: returns the gestures that became certain by then."""
        events: list[Event] = []
        if self._raw != self.pressed and now >= self._raw_since + self.debounce_s:
            self.pressed = self._raw
            if self.pressed:
                self._pressed_at = self._raw_since
                self._long_done = False
                if self.long_press_s is None:
                    events.append(Event(Gesture.PRESS, self._raw_since))
            elif self.long_press_s is not None and not self._long_done:
                events.append(Event(Gesture.SHORT, self._pressed_at))
        # A release not yet certain may still be a bounce, but the hold ends there if not.
        held_until = self._raw_since if self._raw != self.pressed else now
        if (
            self.pressed
            and self.long_press_s is not None
            and not self._long_done
            and held_until >= self._pressed_at + self.long_press_s
        ):
            self._long_done = True
            events.append(Event(Gesture.LONG, self._pressed_at + self.long_press_s))
        return events

    def deadline(self) -> float | None:
        """When :meth:`poll` may next report something, if nothing is fed before; or ``None``.

        Polling at exactly this time settles what was pending (the same sums decide both).
        """
        if self._raw != self.pressed:
            return self._raw_since + self.debounce_s
        if self.pressed and self.long_press_s is not None and not self._long_done:
            return self._pressed_at + self.long_press_s
        return None
