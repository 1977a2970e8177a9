"""The counter panel's debounce and long press: driven with made-up timestamps, and on
gpiozero's mock pins through the panel's buttons."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from counter_terminal.gestures import ButtonLogic, Event, Gesture
from counter_terminal.hardware import Buttons

DEBOUNCE = 0.02
LONG = 1.0


def run(logic: ButtonLogic, levels: list[tuple[float, bool]], until: float) -> list[Event]:
    """Feed ``levels`` as (time, pressed), polling at every deadline, up to ``until``."""
    events: list[Event] = []
    for at, pressed in levels:
        events += _poll_until(logic, at)
        events += logic.feed(pressed, at)
    return events + _poll_until(logic, until)


def _poll_until(logic: ButtonLogic, until: float) -> list[Event]:
    events: list[Event] = []
    while (deadline := logic.deadline()) is not None and deadline <= until:
        events += logic.poll(deadline)
    return events + logic.poll(until)


def plain() -> ButtonLogic:
    return ButtonLogic(debounce_s=DEBOUNCE)


def with_long() -> ButtonLogic:
    return ButtonLogic(debounce_s=DEBOUNCE, long_press_s=LONG)


def test_a_clean_press_counts_once_dated_when_the_contact_closed() -> None:
    events = run(plain(), [(10.0, True), (10.2, False)], until=11.0)
    assert events == [Event(Gesture.PRESS, 10.0)]


def test_bouncing_contacts_give_one_press_dated_at_the_first_edge() -> None:
    bounces = [(10.0, True), (10.002, False), (10.004, True), (10.005, False), (10.007, True)]
    release = [(10.3, False), (10.301, True), (10.303, False)]
    events = run(plain(), [*bounces, *release], until=11.0)
    assert events == [Event(Gesture.PRESS, 10.0)]


def test_the_press_counts_at_the_first_edge_without_waiting() -> None:
    logic = plain()
    assert logic.feed(True, 1.0) == [Event(Gesture.PRESS, 1.0)]
    assert logic.pressed
    assert logic.deadline() is None
    assert logic.feed(False, 1.0 + DEBOUNCE / 4) == []  # a bounce
    assert logic.feed(True, 1.0 + DEBOUNCE / 2) == []
    assert logic.pressed
    assert logic.poll(1.0 + DEBOUNCE) == []


def test_a_press_shorter_than_the_debounce_counts_and_its_release_follows() -> None:
    logic = plain()
    assert logic.feed(True, 5.0) == [Event(Gesture.PRESS, 5.0)]
    assert logic.feed(False, 5.0 + DEBOUNCE / 2) == []
    assert logic.pressed  # the release may still be a bounce …
    assert logic.deadline() == pytest.approx(5.0 + DEBOUNCE)
    assert logic.poll(5.0 + DEBOUNCE) == []
    assert not logic.pressed  # … until the contact stayed open past the bounce time
    # The release counted from when the contact opened: the next press counts at once.
    assert logic.feed(True, 5.0 + DEBOUNCE * 1.5) == [Event(Gesture.PRESS, 5.0 + DEBOUNCE * 1.5)]


def test_a_bounce_that_was_the_release_is_caught_up_and_the_next_press_counts() -> None:
    levels = [(1.0, True), (1.003, False), (1.004, True), (1.006, False), (1.5, True)]
    events = run(plain(), levels, until=2.0)
    assert events == [Event(Gesture.PRESS, 1.0), Event(Gesture.PRESS, 1.5)]


def test_presses_in_a_row_each_count() -> None:
    levels = [
        (t + dt, pressed) for t in (1.0, 2.0, 3.0) for dt, pressed in ((0, True), (0.1, False))
    ]
    events = run(plain(), levels, until=4.0)
    assert events == [Event(Gesture.PRESS, t) for t in (1.0, 2.0, 3.0)]


def test_a_short_press_of_a_long_press_button_is_reported_at_release() -> None:
    logic = with_long()
    assert run(logic, [(1.0, True)], until=1.5) == []
    assert run(logic, [(1.5, False)], until=3.0) == [Event(Gesture.SHORT, 1.0)]


def test_holding_reports_long_once_while_held_and_nothing_at_release() -> None:
    logic = with_long()
    assert run(logic, [(1.0, True)], until=1.0 + LONG) == [Event(Gesture.LONG, 1.0 + LONG)]
    assert logic.deadline() is None
    assert run(logic, [(5.0, False)], until=6.0) == []
    assert not logic.pressed


def test_release_just_before_the_long_press_time_is_short_even_if_polled_later() -> None:
    logic = with_long()
    run(logic, [(1.0, True)], until=1.5)
    logic.feed(False, 1.0 + LONG - 0.01)
    # Polled late, when the release is not yet certain but the hold time has passed.
    assert logic.poll(1.0 + LONG + 0.005) == []
    assert logic.poll(1.0 + LONG + 0.02) == [Event(Gesture.SHORT, 1.0)]


def test_a_bounce_while_held_does_not_cut_the_long_press() -> None:
    logic = with_long()
    levels = [(1.0, True), (1.5, False), (1.505, True)]
    assert run(logic, levels, until=2.5) == [Event(Gesture.LONG, 1.0 + LONG)]


def test_a_repeated_level_changes_nothing() -> None:
    logic = plain()
    events = run(logic, [(1.0, True), (1.01, True), (1.015, True)], until=2.0)
    assert events == [Event(Gesture.PRESS, 1.0)]


@pytest.mark.parametrize(
    ("debounce", "long_press"), [(0.0, None), (-1.0, None), (0.02, 0.02), (0.5, 0.1)]
)
def test_bad_times_are_refused(debounce: float, long_press: float | None) -> None:
    with pytest.raises(ValueError, match="must be"):
        ButtonLogic(debounce_s=debounce, long_press_s=long_press)


def test_a_bouncing_press_of_a_long_press_button_holds_once() -> None:
    levels = [(1.0, True), (1.002, False), (1.003, True)]
    release = [(3.0, False), (3.001, True), (3.002, False)]
    events = run(with_long(), [*levels, *release], until=4.0)
    assert events == [Event(Gesture.LONG, 1.0 + LONG)]


# -- on gpiozero's mock pins: the panel's buttons as the terminal runs them -----------

WAIT_S = 15.0
BOUNCE_S = 0.5
"""Long enough that each bouncing sequence below lands inside it on a loaded machine."""


@pytest.fixture
def buttons() -> Iterator[tuple[Buttons, queue.Queue[tuple[str, Gesture]]]]:
    """Next, Done and Transfer (with long press) on mock pins, reporting to a queue."""
    made = Buttons(debounce_s=BOUNCE_S, pull_up=True, pin_factory=MockFactory())
    made.add("next", 17)
    made.add("done", 22)
    made.add("transfer", 27, long_press_s=BOUNCE_S * 2)
    events: queue.Queue[tuple[str, Gesture]] = queue.Queue()
    made.start(lambda name, event: events.put((name, event.gesture)))
    yield made, events
    made.close()


def bounce(pin: Any, *, to_low: bool) -> None:
    """The contact chatters, then settles: low (pressed) or high (released)."""
    first, second = (pin.drive_low, pin.drive_high) if to_low else (pin.drive_high, pin.drive_low)
    for _ in range(3):
        first()
        second()
    first()


def all_until_done(events: queue.Queue[tuple[str, Gesture]], buttons: Buttons) -> list[Any]:
    """Press Done (cleanly) and return every gesture reported up to and including it.

    Gestures are reported in order from one thread, so any from a bounce before comes
    first.
    """
    pin = buttons.pin("done")
    pin.drive_low()
    assert buttons.wait_pressed("done", True, WAIT_S)
    pin.drive_high()
    seen = []
    while not seen or seen[-1] != ("done", Gesture.PRESS):
        seen.append(events.get(timeout=WAIT_S))
    assert buttons.wait_pressed("done", False, WAIT_S)
    return seen


def test_a_bouncing_button_sends_one_press_each_time(
    buttons: tuple[Buttons, queue.Queue[tuple[str, Gesture]]],
) -> None:
    made, events = buttons
    pin = made.pin("next")
    bounce(pin, to_low=True)
    assert events.get(timeout=WAIT_S) == ("next", Gesture.PRESS)  # on the first edge
    bounce(pin, to_low=False)
    assert made.wait_pressed("next", False, WAIT_S)
    bounce(pin, to_low=True)  # pressed again
    assert made.wait_pressed("next", True, WAIT_S)
    bounce(pin, to_low=False)
    assert made.wait_pressed("next", False, WAIT_S)
    assert [("next", Gesture.PRESS), *all_until_done(events, made)] == [
        ("next", Gesture.PRESS),
        ("next", Gesture.PRESS),
        ("done", Gesture.PRESS),
    ]


def test_a_press_released_within_the_bounce_time_counts_once_and_is_let_go(
    buttons: tuple[Buttons, queue.Queue[tuple[str, Gesture]]],
) -> None:
    made, events = buttons
    pin = made.pin("next")
    pin.drive_low()
    pin.drive_high()
    assert events.get(timeout=WAIT_S) == ("next", Gesture.PRESS)
    assert made.wait_pressed("next", False, WAIT_S)
    assert all_until_done(events, made) == [("done", Gesture.PRESS)]


def test_the_long_press_still_holds_through_bounces(
    buttons: tuple[Buttons, queue.Queue[tuple[str, Gesture]]],
) -> None:
    made, events = buttons
    pin = made.pin("transfer")
    bounce(pin, to_low=True)
    assert events.get(timeout=WAIT_S) == ("transfer", Gesture.LONG)  # while still held
    bounce(pin, to_low=False)
    assert made.wait_pressed("transfer", False, WAIT_S)
    bounce(pin, to_low=True)  # a short press: reported at its release
    assert made.wait_pressed("transfer", True, WAIT_S)
    bounce(pin, to_low=False)
    assert made.wait_pressed("transfer", False, WAIT_S)
    assert all_until_done(events, made) == [("transfer", Gesture.SHORT), ("done", Gesture.PRESS)]
