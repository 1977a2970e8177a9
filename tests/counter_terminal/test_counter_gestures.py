"""The counter panel's debounce and long press, driven with made-up timestamps."""

from __future__ import annotations

import pytest

from counter_terminal.gestures import ButtonLogic, Event, Gesture

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


def test_bouncing_contacts_give_one_press() -> None:
    bounces = [(10.0, True), (10.002, False), (10.004, True), (10.005, False), (10.007, True)]
    release = [(10.3, False), (10.301, True), (10.303, False)]
    events = run(plain(), [*bounces, *release], until=11.0)
    assert events == [Event(Gesture.PRESS, 10.007)]


def test_a_spike_shorter_than_the_debounce_is_no_press() -> None:
    logic = plain()
    assert run(logic, [(5.0, True), (5.0 + DEBOUNCE / 2, False)], until=6.0) == []
    assert not logic.pressed


def test_the_press_is_reported_while_still_held() -> None:
    logic = plain()
    assert logic.feed(True, 1.0) == []
    assert logic.poll(1.0 + DEBOUNCE / 2) == []
    assert logic.deadline() == pytest.approx(1.0 + DEBOUNCE)
    assert logic.poll(1.0 + DEBOUNCE) == [Event(Gesture.PRESS, 1.0)]
    assert logic.pressed
    assert logic.deadline() is None


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
