"""No call is lost to a broker outage: the hub's outbox, and displays catching up.

A real Mosquitto that the tests stop and start, the hub's bridge with its durable
outbox, and the display role (headless SDL, its announcer writing WAV files).
"""

from __future__ import annotations

import json
import queue
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from display_helpers import WAIT_S, RunningDisplay, display_settings, start_display
from office_helpers import OfficeBroker, RunningHub

from display.announcer import Announcement
from display.app import call_age_s
from hub.publications import OUTBOX_FILE
from hub.service import utc_now
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

pytestmark = pytest.mark.usefixtures("headless")


class Lobby:
    """Display d1 running with its announcer, and every announcement it made."""

    def __init__(self, running: RunningDisplay) -> None:
        self.running = running
        self.announced: queue.Queue[Announcement] = queue.Queue()
        announcer = running.display.announcer
        assert announcer is not None
        announcer.on_done = self.announced.put

    def next_announced(self) -> str:
        """The ticket of the next call announced (waits for it)."""
        return self.announced.get(timeout=WAIT_S).call.ticket


@pytest.fixture
def lobby(broker: OfficeBroker, tmp_path: Path) -> Iterator[Callable[..., Lobby]]:
    """Start display d1 on the test broker (as many times as asked, one at a time)."""
    running: list[RunningDisplay] = []

    def start(**display: object) -> Lobby:
        settings = display_settings(
            broker.mqtt("display-d1"), broker.site, tmp_path, min_show_s=0.2, **display
        )
        shown = start_display(settings)
        running.append(shown)
        started = Lobby(shown)  # before it hears anything
        assert shown.display.link.connection.subscribed.wait(WAIT_S)
        return started

    yield start
    for shown in running:
        shown.close()


def link_down(hub: RunningHub) -> threading.Event:
    """An event set when the hub's link to the broker goes down."""
    down = threading.Event()
    hub.link.on_connection_change(lambda up: None if up else down.set())
    return down


def call_next(hub: RunningHub, counter: str) -> str:
    """A clerk's Next in the web clerk panel (the service layer, as the panel does it)."""
    change = hub.queue.counter_action(counter, "next", actor="clerk:eva")
    assert change.subject is not None
    return change.subject.number


def test_a_web_call_during_an_outage_is_announced_once_when_the_broker_is_back(
    hub: RunningHub, broker: OfficeBroker, lobby: Callable[..., Lobby]
) -> None:
    for service in ("taxes", "taxes"):
        hub.queue.issue(service)
    shown = lobby()
    shown.running.wait_for(lambda s: any(r.waiting == 2 for r in s.services))
    down = link_down(hub)

    broker.process.stop()
    assert down.wait(WAIT_S)
    first = call_next(hub, "1")
    assert hub.link.undelivered == 2  # on `calls`, and as counter 1's retained last call
    broker.process.start()

    frame = shown.running.wait_for(lambda s: s.current is not None and s.current.ticket == first)
    assert frame.scene.current is not None
    assert frame.scene.current.counter == "1"
    assert shown.next_announced() == first
    # The call came twice (live and retained); a second announcement of it would come
    # before that of the next call.
    second = call_next(hub, "2")
    assert shown.next_announced() == second
    assert shown.announced.empty()
    assert hub.link.undelivered == 0


def test_a_display_started_after_a_call_learns_it(
    hub: RunningHub, broker: OfficeBroker, lobby: Callable[..., Lobby]
) -> None:
    for service in ("taxes", "taxes"):
        hub.queue.issue(service)
    # Counter 2 calls during an outage of ten minutes (on the outbox's clock)...
    down = link_down(hub)
    broker.process.stop()
    assert down.wait(WAIT_S)
    old = call_next(hub, "2")
    hub.link.clock = lambda: utc_now() + timedelta(minutes=10)
    broker.process.start()
    # ...and counter 1 calls now, with no display listening.
    young = call_next(hub, "1")

    shown = lobby(catch_up_s=60)
    assert shown.next_announced() == young
    frame = shown.running.wait_for(
        lambda s: s.current is not None and s.current.ticket == young and len(s.history) == 1
    )
    assert [(c.ticket, c.counter) for c in frame.scene.history] == [(old, "2")]
    # The old call is listed, never announced; the next announcement is the next call.
    hub.queue.issue("taxes")
    latest = call_next(hub, "2")
    assert shown.next_announced() == latest


def test_a_call_waits_in_the_hubs_outbox_across_a_hub_restart(
    start_hub: Callable[[], RunningHub],
    broker: OfficeBroker,
    device: Callable[..., DeviceLink],
    tmp_path: Path,
) -> None:
    hub = start_hub()
    outbox = tmp_path / "hub" / OUTBOX_FILE
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o600  # it holds the office's calls
    for _ in range(3):
        hub.queue.issue("waste")
    down = link_down(hub)
    broker.process.stop()
    assert down.wait(WAIT_S)
    made = [(call_next(hub, counter), counter) for counter in ("3", "5", "1")]
    hub.stop()
    broker.process.start()

    display = device("display-d1")
    calls: queue.Queue[dict[str, object]] = queue.Queue()
    display.subscribe(display.topics.calls(), lambda _t, data: calls.put(json.loads(data)))
    assert display.connection.subscribed.wait(WAIT_S)
    start_hub()
    heard = [calls.get(timeout=WAIT_S) for _ in made]
    assert [(c["ticket"], c["counter"]) for c in heard] == made  # in the order they were made
    # The retained copy is there for a display that starts later.
    late: queue.Queue[p.Call] = queue.Queue()
    display.subscribe(
        display.topics.counter_call("1", "+"), lambda _t, data: late.put(p.decode(p.Call, data))
    )
    assert late.get(timeout=WAIT_S).ticket == made[-1][0]


def test_a_display_learns_every_recent_call_of_a_counter_not_only_the_last(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    # Counter 1 calls five tickets while no display listens: the last four stay.
    for _ in range(5):
        hub.queue.issue("taxes")
    made = [call_next(hub, "1") for _ in range(5)]
    display = device("display-d1")
    retained: queue.Queue[p.Call] = queue.Queue()
    display.subscribe(
        display.topics.counter_call("1", "+"),
        lambda _t, data: retained.put(p.decode(p.Call, data)),
    )
    heard = {retained.get(timeout=WAIT_S).ticket for _ in range(p.CALL_SLOTS)}
    assert heard == set(made[-p.CALL_SLOTS :])


def test_a_new_day_clears_the_last_calls(
    hub: RunningHub, device: Callable[..., DeviceLink]
) -> None:
    hub.queue.issue("taxes")
    number = call_next(hub, "1")
    display = device("display-d1")
    last: queue.Queue[tuple[str, bytes]] = queue.Queue()
    display.subscribe(display.topics.counter_call("+", "+"), lambda t, data: last.put((t, data)))
    topic, data = last.get(timeout=WAIT_S)
    assert (topic, p.decode(p.Call, data).ticket) == (display.topics.counter_call("1", "0"), number)

    hub.queue.clock = lambda: utc_now() + timedelta(days=1)
    assert hub.queue.roll_over() is not None
    counters = hub.queue.engine.counters
    cleared = {last.get(timeout=WAIT_S) for _ in range(len(counters) * p.CALL_SLOTS)}
    assert cleared == {
        (display.topics.counter_call(c, str(slot)), b"")
        for c in counters
        for slot in range(p.CALL_SLOTS)
    }


def test_a_calls_age_comes_from_its_expiry_left_else_from_the_clock() -> None:
    called_at = utc_now() - timedelta(seconds=90)
    call = p.Call(
        ticket="A001",
        ticket_id="t1",
        counter="1",
        counter_name="Okienko 1",
        service="taxes",
        called_at=called_at,
        recall=False,
        calls=1,
    )
    # The broker's countdown wins over called_at (this Pi's clock may be far off).
    assert call_age_s(call, p.CALL_LIFETIME_S - 5) == 5.0
    assert call_age_s(call, p.CALL_LIFETIME_S + 3) == 0.0
    # Without an expiry (a hub of an earlier version): the display's clock.
    assert 90.0 <= call_age_s(call, None) < 90.0 + WAIT_S
