"""Debounce and long press of one button: a small state machine fed with (level, time).

Pure logic, no threads, no clock: :meth:`ButtonLogic.feed` takes each change of the
raw contact with the time it happened, :meth:`ButtonLogic.poll` is called when time
has passed (at :meth:`ButtonLogic.deadline` at the latest), and both return the
gestures that became certain. The tests drive it with made-up timestamps.

**Debounce: the first edge counts.** A change of the contact counts the moment it
happens, unless the button changed within the last ``debounce_s``: then it is a
bounce, and is ignored (as gpiozero's ``bounce_time`` does). So Next calls as soon
as the contact closes, not ``debounce_s`` later. Unlike ``bounce_time``, the state
never stays wrong: if, once ``debounce_s`` has passed since the counted change, the
contact rests at the other level (a press shorter than the debounce, or a bounce
that was the real release), that change counts then, dated to when the contact
reached that level.

**Long press.** A button with ``long_press_s`` reports :attr:`Gesture.LONG` as soon as
it has been held that long (the clerk feels it take effect without letting go), and
:attr:`Gesture.SHORT` on release when it was let go earlier. Its release counts only
once the contact has stayed open for ``debounce_s``: a bounce while it is held does
not cut the hold (nobody waits for a release). A button without one
reports :attr:`Gesture.PRESS` the moment its press counts: no waiting for the
release, so Next calls at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ButtonLogic", "Event", "Gesture"]


class Gesture(enum.Enum):
    """What a clerk did with a button."""

    PRESS = "press"
    """A press of a button without long press: reported when the contact closes."""
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

    ``debounce_s`` is how long after a counted change further changes are bounces;
    ``long_press_s``, if given, makes the button report short and long presses instead
    of plain presses. Times are seconds on any monotonic clock; they must not go
    backwards.
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
        self._quiet_from = float("-inf")
        """Changes before this are bounces of the last counted one."""
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
            # The first edge after a quiet time counts at once (a bounce back does not).
            if pressed != self.pressed and at >= self._counts_at():
                events += self._count()
        return events

    def poll(self, now: float) -> list[Event]:
        """Time is now ``now``: returns the gestures that became certain by then."""
        events: list[Event] = []
        if self._raw != self.pressed and now >= self._counts_at():
            # The bounces are over and the contact rests at the other level.
            events += self._count()
        # A release in the bounce time may still be a bounce, but the hold ends there if not.
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

    def _counts_at(self) -> float:
        """When the contact's change not yet counted counts, if the contact stays put."""
        if not self._raw and self.long_press_s is not None:
            # A release that ends a hold must last: a bounce while held is no release.
            return max(self._quiet_from, self._raw_since + self.debounce_s)
        return self._quiet_from

    def _count(self) -> list[Event]:
        """The contact's last change (to :attr:`_raw`, at :attr:`_raw_since`) counts."""
        self.pressed = self._raw
        self._quiet_from = self._raw_since + self.debounce_s
        if self.pressed:
            self._pressed_at = self._raw_since
            self._long_done = False
            return [Event(Gesture.PRESS, self._raw_since)] if self.long_press_s is None else []
        if self.long_press_s is not None and not self._long_done:
            return [Event(Gesture.SHORT, self._pressed_at)]
        return []

    def deadline(self) -> float | None:
        """When :meth:`poll` may next report something, if nothing is fed before; or ``None``.

        Polling at exactly this time settles what was pending (the same sums decide both).
        """
        if self._raw != self.pressed:
            return self._counts_at()
        if self.pressed and self.long_press_s is not None and not self._long_done:
            return self._pressed_at + self.long_press_s
        return None
