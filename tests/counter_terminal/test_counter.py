"""The counter role: gpiozero mock pins pressed against the real hub and Mosquitto."""

from __future__ import annotations

import logging
import queue
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from appointment_helpers import (
    insert_appointment,
    make_appointment,
    open_for_remote,
    slot_open_now,
)
from counter_helpers import FULL, SMALL, panel_settings
from gpiozero.pins.mock import MockFactory
from office_helpers import OfficeBroker, RunningHub
from process_helpers import Process, poradovnik_args

from common.errors import PoradovnikError
from counter_terminal.app import CounterTerminal
from counter_terminal.desk import CounterDesk
from counter_terminal.hardware import LightMode
from counter_terminal.lcd import LcdDisplay, SimulatedDisplay
from counter_terminal.simulated import SimulatedClerks
from hub.model import Priority, TicketState
from hub.service import utc_now
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

WAIT_S = 15.0


class Terminal:
    """A running counter terminal of the test office with its clerks and the lobby's calls."""

    def __init__(self, terminal: CounterTerminal, calls: queue.Queue[p.Call]) -> None:
        self.terminal = terminal
        self.replies: queue.Queue[object] = queue.Queue()
        terminal.link.on_reply(lambda _command, reply: self.replies.put(reply))
        self.clerks: SimulatedClerks = terminal.clerks(seed=1)
        self.calls = calls

    def desk(self, counter: str) -> CounterDesk:
        return self.terminal.desks[counter]

    def wait(self, counter: str, condition: Callable[[CounterDesk], bool]) -> None:
        desk = self.desk(counter)
        with desk.changed:
            assert desk.changed.wait_for(lambda: condition(desk), WAIT_S), desk.view()

    def wait_ticket(self, counter: str, number: str | None) -> None:
        def has(desk: CounterDesk) -> bool:
            ticket = desk.state.ticket if desk.state is not None else None
            return (ticket.number if ticket else None) == number and desk.pending == 0

        self.wait(counter, has)

    def call(self) -> p.Call:
        return self.calls.get(timeout=WAIT_S)

    def light(self, counter: str, name: str) -> Any:
        return self.desk(counter).panel.lights[name]

    def display(self, counter: str) -> SimulatedDisplay:
        display = self.desk(counter).panel.display
        assert isinstance(display, SimulatedDisplay)
        return display


@pytest.fixture
def start_terminal(
    broker: OfficeBroker, device: Callable[..., DeviceLink], tmp_path: Path
) -> Iterator[Callable[..., Terminal]]:
    """Start the counter terminal of panel p1 (counters 1 and 2) on mock pins."""
    started: list[CounterTerminal] = []
    display = device("display-d1")
    calls: queue.Queue[p.Call] = queue.Queue()
    display.subscribe(display.topics.calls(), lambda _t, data: calls.put(p.decode(p.Call, data)))
    assert display.connection.subscribed.wait(WAIT_S)

    def start(**counter: Any) -> Terminal:
        # The lobby hears every call the terminal causes (also after a broker restart).
        assert display.connection.subscribed.wait(WAIT_S)
        settings = panel_settings(broker, tmp_path, **counter)
        link = device("panel-p1", start=False)
        terminal = CounterTerminal(settings, pin_factory=MockFactory(), link=link)
        started.append(terminal)
        running = Terminal(terminal, calls)
        terminal.start()
        for counter_id in terminal.desks:  # the hub's retained state has arrived
            running.wait(counter_id, lambda desk: desk.state is not None and desk.office.online)
        return running

    yield start
    for terminal in started:
        terminal.stop()


def issue(hub: RunningHub, *services: str) -> list[str]:
    return [hub.queue.issue(service).ticket.number for service in services]


def waiting(hub: RunningHub) -> list[str]:
    tickets = hub.queue.engine.tickets.values()
    return sorted(t.number for t in tickets if t.state is TicketState.WAITING)


def in_state(state: str) -> Callable[[CounterDesk], bool]:
    return lambda desk: desk.state is not None and desk.state.state == state and not desk.pending


def test_a_checked_in_appointment_is_marked_on_the_display(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    booking = insert_appointment(hub.queue.store, make_appointment("taxes", slot_open_now()))
    hub.queue.check_in(booking.code)
    office = start_terminal()
    office.clerks.press("1", "next")
    call = office.call()
    assert (call.ticket, call.appointment) == ("A001", True)
    office.wait_ticket("1", "A001")
    assert office.display("1").lines[0] == "A001 Booked"


def test_a_remote_ticket_is_marked_on_the_display(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    open_for_remote(hub.queue, presence=False)
    hub.queue.issue_remote("taxes")
    office = start_terminal()
    office.clerks.press("1", "next")
    call = office.call()
    assert (call.ticket, call.remote, call.appointment) == ("A001", True, False)
    office.wait_ticket("1", "A001")
    assert office.display("1").lines[0] == "A001 Remote"


def test_a_ticket_with_priority_is_marked_on_the_display(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    hub.queue.issue("taxes", priority=Priority.DISABILITY)
    issue(hub, "taxes")
    office = start_terminal(next_guard_s=0.0)
    office.clerks.press("1", "next")
    assert office.call().priority
    office.wait_ticket("1", "A001")
    assert office.display("1").lines[0] == "»A001"
    office.clerks.press("1", "next")
    office.wait_ticket("1", "A002")
    assert office.display("1").lines[0] == "A002"
    # A clerk gives the current citizen priority on the web panel: the mark follows.
    current = hub.queue.engine.counters["1"].current
    assert current is not None
    hub.queue.prioritise(current, Priority.AGE, actor="web:clerk")
    office.wait("1", lambda desk: desk.view().lines[0] == "»A002")
    assert office.display("1").lines[0] == "»A002"


def test_next_calls_the_next_citizen_and_lights_the_panel(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    issue(hub, "taxes", "taxes")
    office = start_terminal()
    assert office.light("1", "ready").mode is LightMode.BLINK  # the day starts paused
    assert office.light("1", "offline").pin.state == 0

    office.clerks.press("1", "next")
    call = office.call()
    assert (call.ticket, call.counter, call.recall) == ("A001", "1", False)
    office.wait_ticket("1", "A001")
    assert office.light("1", "serving").pin.state == 1
    assert office.light("1", "ready").pin.state == 0
    assert office.light("1", "ready").mode is LightMode.OFF
    assert office.display("1").lines == ("A001", "Waiting: 1")

    office.clerks.press("1", "recall")
    call = office.call()
    assert (call.ticket, call.recall, call.calls) == ("A001", True, 2)
    office.wait_ticket("1", "A001")
    assert office.display("1").lines[0] == "A001 (2x)"

    office.clerks.press("1", "done")
    office.wait_ticket("1", None)
    assert office.light("1", "serving").pin.state == 0
    assert office.light("1", "ready").pin.state == 1
    assert office.display("1").lines == ("Free", "Waiting: 1")


def test_the_citizen_rates_the_visit_with_the_rating_buttons(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    issue(hub, "taxes")
    rating = FULL.model_copy(update={"rate_good": 4, "rate_neutral": 18, "rate_bad": 7})
    office = start_terminal(panels=(rating, SMALL))
    office.clerks.press("1", "rate_neutral")  # nothing finished here yet
    office.wait("1", lambda desk: desk.pending == 0)
    assert office.display("1").lines[1] == "Refused"
    office.clerks.press("1", "next")
    office.wait_ticket("1", "A001")
    office.clerks.press("1", "done")
    office.wait_ticket("1", None)
    office.clerks.press("1", "rate_good")
    office.wait("1", lambda desk: desk.pending == 0)
    assert office.display("1").lines == ("Free", "Rated A001: 5/5")
    day = hub.queue.today()
    [stored] = hub.bridge.feedback.ratings(day, day)
    assert (stored.number, stored.rating, stored.source) == ("A001", 5, "counter")
    assert (stored.counter, stored.clerk) == ("1", "counter:1")
    # One rating per visit: a second press is refused on the panel, the first one stays.
    office.clerks.press("1", "rate_bad")
    office.wait("1", lambda desk: desk.pending == 0)
    assert office.display("1").lines[1] == "Already rated"
    assert [r.rating for r in hub.bridge.feedback.ratings(day, day)] == [5]


def test_a_second_next_too_soon_is_refused_on_the_panel(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    issue(hub, "taxes", "taxes")
    office = start_terminal(next_guard_s=120.0)
    buzzer = office.desk("1").panel.beeper
    assert buzzer is not None
    office.clerks.press("1", "next")
    office.clerks.press("1", "next")  # at once: refused, never sent
    assert office.call().ticket == "A001"
    office.wait_ticket("1", "A001")
    assert office.desk("1").panel.wait_until_steady(WAIT_S)
    assert [s.state for s in buzzer.pin.states][-2:] == [True, False]
    assert [s.state for s in office.light("1", "offline").pin.states][-2:] == [True, False]
    assert office.calls.empty()
    assert waiting(hub) == ["A002"]


def test_next_after_the_guard_window_is_sent(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    issue(hub, "taxes", "taxes")
    office = start_terminal(next_guard_s=0.0)
    office.clerks.press("1", "next")
    office.wait_ticket("1", "A001")
    office.clerks.press("1", "next")
    assert [office.call().ticket, office.call().ticket] == ["A001", "A002"]
    office.wait_ticket("1", "A002")


def test_transfer_picks_the_service_by_short_presses_and_sends_on_a_long_press(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    (number,) = issue(hub, "taxes")
    office = start_terminal()
    office.clerks.press("1", "next")
    office.wait_ticket("1", number)
    display = office.display("1")
    office.clerks.press("1", "transfer")  # waste (B): the first service but the ticket's own
    assert display.lines[1] == "To: Municipal wa"  # 16 characters
    office.clerks.press("1", "transfer")
    assert display.lines[1] == "To: Parking"
    serving = office.light("1", "serving")
    assert office.desk("1").panel.wait_until_steady(WAIT_S)
    flashes = [s.state for s in serving.pin.states].count(True)
    assert flashes >= 1 + 2  # the call, then one flash for waste, two for parking
    office.clerks.press("1", "transfer", hold=True)
    office.wait_ticket("1", None)
    (ticket,) = hub.queue.engine.tickets.values()
    assert (ticket.number, ticket.service, ticket.state) == (number, "parking", TicketState.WAITING)
    assert display.lines[1] == "Waiting: 0"  # counter 1 does not serve parking


def test_transfer_without_a_citizen_or_a_pick_is_refused(
    hub: RunningHub, start_terminal: Callable[..., Terminal]
) -> None:
    issue(hub, "taxes")
    office = start_terminal()
    office.clerks.press("1", "transfer", hold=True)  # nobody at the counter
    office.clerks.press("1", "next")
    office.wait_ticket("1", "A001")
    office.clerks.press("1", "transfer", hold=True)  # no service picked
    assert office.desk("1").pending == 0
    assert office.desk("1").panel.wait_until_steady(WAIT_S)
    (ticket,) = hub.queue.engine.tickets.values()
    assert (ticket.service, ticket.state) == ("taxes", TicketState.CALLED)


def test_pause_and_resume_toggle(hub: RunningHub, start_terminal: Callable[..., Terminal]) -> None:
    office = start_terminal()
    office.clerks.press("1", "pause")  # paused at the start of the day: resume
    office.wait("1", in_state("open"))
    assert office.light("1", "ready").mode is LightMode.ON
    office.clerks.press("1", "pause")
    office.wait("1", in_state("paused"))
    assert office.light("1", "ready").mode is LightMode.BLINK
    assert office.display("1").lines[0] == "Paused"
    assert hub.queue.engine.counters["1"].state.value == "paused"


def test_a_command_the_hub_refuses_blinks_and_is_logged(
    hub: RunningHub, start_terminal: Callable[..., Terminal], caplog: pytest.LogCaptureFixture
) -> None:
    office = start_terminal()
    offline = office.light("1", "offline")
    offline.pin.clear_states()
    with caplog.at_level(logging.WARNING, logger="counter_terminal"):
        office.clerks.press("1", "recall")  # nobody to recall
        office.wait("1", lambda desk: desk.pending == 0)
    assert "the hub refused recall" in caplog.text
    assert "no_ticket" in caplog.text
    assert office.desk("1").panel.wait_until_steady(WAIT_S)
    assert [s.state for s in offline.pin.states] == [False, True, False, True, False, True, False]
    assert office.display("1").lines[1] == "Refused"


def test_presses_while_the_broker_is_away_are_applied_once_when_it_is_back(
    hub: RunningHub, broker: OfficeBroker, start_terminal: Callable[..., Terminal]
) -> None:
    issue(hub, "taxes", "taxes", "taxes")
    office = start_terminal()
    broker.process.stop()
    for counter in ("1", "2"):
        office.wait(counter, lambda desk: not desk.office.online)
        assert office.light(counter, "offline").pin.state == 1
    assert office.display("1").lines[1] == "Offline"

    office.clerks.press("1", "next")
    office.clerks.press("1", "recall")
    office.clerks.press("2", "next")
    office.clerks.press("1", "next")  # refused: the first Next is not answered yet
    assert office.terminal.link.queued == 3

    broker.process.start()
    office.wait_ticket("1", "A001")
    office.wait_ticket("2", "A002")
    office.wait("1", lambda desk: desk.office.online)
    assert office.desk("1").panel.wait_until_steady(WAIT_S)  # the refusal's flash is over
    assert office.light("1", "offline").pin.state == 0
    engine = hub.queue.engine
    assert engine.counters["1"].current is not None
    first = engine.tickets[engine.counters["1"].current]
    assert (first.number, first.calls) == ("A001", 2)
    assert waiting(hub) == ["A003"]
    assert office.terminal.link.queued == 0
    recalls = [e for e in hub.queue.store.events(first.id) if e.action == "recall"]
    assert len(recalls) == 1


def test_presses_queued_before_a_restart_are_sent_after_it(
    hub: RunningHub, broker: OfficeBroker, start_terminal: Callable[..., Terminal]
) -> None:
    issue(hub, "taxes")
    office = start_terminal()
    broker.process.stop()
    office.wait("1", lambda desk: not desk.office.online)
    office.clerks.press("1", "next")
    office.terminal.stop()
    broker.process.start()
    again = start_terminal()
    reply = again.replies.get(timeout=WAIT_S)
    assert isinstance(reply, p.CommandReply)
    assert reply.ticket is not None
    assert reply.ticket.number == "A001"
    assert again.call().ticket == "A001"
    again.wait_ticket("1", "A001")
    assert again.terminal.link.queued == 0


def test_no_panels_is_a_clear_error(broker: OfficeBroker, tmp_path: Path) -> None:
    settings = panel_settings(broker, tmp_path, panels=())
    with pytest.raises(PoradovnikError, match=r"\[\[counter.panels\]\]"):
        CounterTerminal(settings, pin_factory=MockFactory())


def test_a_pin_in_use_is_a_clear_error(broker: OfficeBroker, tmp_path: Path) -> None:
    factory = MockFactory()
    first = CounterTerminal(panel_settings(broker, tmp_path), pin_factory=factory)
    try:
        with pytest.raises(PoradovnikError, match="GPIO17"):
            CounterTerminal(panel_settings(broker, tmp_path), pin_factory=factory)
    finally:
        first.stop()


@pytest.mark.skipif(Path("/dev/i2c-1").exists(), reason="this machine has an I2C bus 1")
def test_an_lcd_that_is_not_there_is_a_clear_error() -> None:
    with pytest.raises(PoradovnikError, match=r"cannot open the LCD at I2C address 0x27"):
        LcdDisplay(address=0x27, port=1)


def test_the_counter_command_runs_simulated_clerks_on_mock_pins(
    hub: RunningHub,
    broker: OfficeBroker,
    device: Callable[..., DeviceLink],
    processes: Callable[..., Process],
    tmp_path: Path,
) -> None:
    issue(hub, *["taxes", "waste"] * 5)
    display = device("display-d1")
    calls: queue.Queue[p.Call] = queue.Queue()
    display.subscribe(display.topics.calls(), lambda _t, data: calls.put(p.decode(p.Call, data)))
    statuses: queue.Queue[p.DeviceStatus] = queue.Queue()
    hub.link.subscribe(  # only the hub may read a device's status
        display.topics.device_status("p1"),
        lambda _t, data: statuses.put(p.decode(p.DeviceStatus, data)),
    )
    assert display.connection.subscribed.wait(WAIT_S)
    config = tmp_path / "counter.toml"
    config.write_text(
        f'role = "counter"\n[site]\nid = "{broker.site}"\n'
        f'[mqtt]\nport = {broker.port}\nusername = "panel-p1"\n'
        f'password = "{broker.passwords["panel-p1"]}"\n'
        f'[data]\ndir = "{tmp_path / "panel"}"\n[device]\nid = "p1"\n'
        '[counter]\npin_factory = "mock"\ndisplay = "simulated"\nsimulate_clerks_s = 0.2\n'
        '[[counter.panels]]\ncounter = "1"\nnext = 17\nrecall = 27\noffline_led = 19\n',
        encoding="utf-8",
    )
    process = processes(poradovnik_args("--config", str(config), "counter"), name="counter")
    call = calls.get(timeout=WAIT_S)
    assert (call.counter, call.ticket) == ("1", "A001")
    assert statuses.get(timeout=WAIT_S).state == "online"
    assert process.stop(signal.SIGTERM, timeout=WAIT_S) == 0, process.describe()
    output = process.output()
    assert "Traceback" not in output
    assert "counter 1: next" in output
    # (Overlapping subscriptions of the hub may deliver a status twice.)
    while statuses.get(timeout=WAIT_S).state != "offline":
        pass


def test_the_counter_command_without_panels_fails_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "counter.toml"
    # With a broker account: a device without one is paired with the hub first.
    config.write_text(
        'role = "counter"\n[mqtt]\nusername = "p"\npassword = "panel-password"\n'
        '[counter]\npin_factory = "mock"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "poradovnik.cli", "--config", str(config), "counter"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("poradovnik: no counter panel is set up")
    assert len(done.stderr.splitlines()) == 1


def test_a_press_queued_offline_until_the_next_day_is_refused_and_the_panel_says_so(
    hub: RunningHub, broker: OfficeBroker, start_terminal: Callable[..., Terminal]
) -> None:
    issue(hub, "taxes")
    office = start_terminal(next_guard_s=0.0)
    today = hub.queue.engine.day
    assert office.desk("1").state is not None
    assert office.desk("1").state.business_day == today
    broker.process.stop()
    office.wait("1", lambda desk: not desk.office.online)
    office.clerks.press("1", "next")  # stamped with today; it waits in the outbox
    # The office closes for the day; the panel is still offline the next morning.
    hub.queue.clock = lambda: utc_now() + timedelta(days=1)
    assert hub.queue.roll_over() is not None
    broker.process.start()

    refused = office.replies.get(timeout=WAIT_S)
    assert isinstance(refused, p.ErrorReply)
    assert refused.error.code == "stale_day"
    office.wait("1", lambda desk: desk.pending == 0 and desk.view().lines[1] == "Outdated press")
    assert office.desk("1").panel.wait_until_steady(WAIT_S)
    flashes = [s.state for s in office.light("1", "offline").pin.states]
    assert flashes[-7:] == [False, True, False, True, False, True, False]
    assert hub.queue.engine.counters["1"].current is None
    assert office.calls.empty()

    # Once the panel has heard the new day, a press is applied.
    office.wait("1", lambda desk: desk.state is not None and desk.state.business_day > today)
    (number,) = issue(hub, "taxes")
    office.clerks.press("1", "next")
    assert office.call().ticket == number
    office.wait_ticket("1", number)


@pytest.mark.parametrize(
    ("counter", "queues"),
    [
        ({"display": "none", "panels": (SMALL,)}, False),  # Next, Recall and two lights
        ({"display": "simulated", "panels": (SMALL,)}, True),  # the display shows them
        ({"display": "none", "panels": (FULL,)}, True),  # Transfer picks among them
    ],
)
def test_queue_states_are_heard_only_by_panels_that_use_them(
    hub: RunningHub,
    start_terminal: Callable[..., Terminal],
    counter: dict[str, Any],
    queues: bool,
) -> None:
    issue(hub, "taxes")
    office = start_terminal(**counter)
    # The hub's status is subscribed after the queues: once it is heard, so are they.
    assert bool(office.terminal.office.queues) is queues
