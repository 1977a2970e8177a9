"""The lobby display end to end: the real broker and hub, a counter panel calling, and the
display's screen (headless SDL), sound (WAV files) and LED boards (emulated)."""

from __future__ import annotations

import queue
import uuid
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from display_helpers import WAIT_S, RunningDisplay, display_settings, shows, start_display
from office_helpers import OfficeBroker, RunningHub

from common.display_settings import BoardSettings
from display.announcer import Announcement
from display.boards.emulator import EmulatedBoards, SimulatedPort
from display.sound import chime
from hub.bridge import DeviceView
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

pytestmark = pytest.mark.usefixtures("headless")


@pytest.fixture
def displays(broker: OfficeBroker, tmp_path: Path) -> Iterator[Callable[..., RunningDisplay]]:
    """Start display d1 on the test broker with extra ``[display]`` settings."""
    running: list[RunningDisplay] = []

    def start(**display: object) -> RunningDisplay:
        settings = display_settings(broker.mqtt("display-d1"), broker.site, tmp_path, **display)
        shown = start_display(settings)
        running.append(shown)
        assert shown.display.link.connection.subscribed.wait(WAIT_S)
        return shown

    yield start
    for shown in running:
        shown.close()


def press_next(panel: DeviceLink, counter: str) -> None:
    panel.send(
        panel.topics.counter_cmd(counter), p.CounterCommand(msg_id=uuid.uuid4().hex, action="next")
    )


BOARDS = (BoardSettings(address=1, counter="1"), BoardSettings(address=9, hall=True, width=8))


def test_a_call_is_shown_announced_and_put_on_the_boards(
    hub: RunningHub,
    device: Callable[..., DeviceLink],
    displays: Callable[..., RunningDisplay],
    tmp_path: Path,
) -> None:
    hub.queue.issue("taxes")
    hub.queue.issue("taxes")
    shown = displays(boards_backend="simulated", boards=BOARDS, min_show_s=0.5)
    announced: queue.Queue[Announcement] = queue.Queue()
    assert shown.display.announcer is not None
    shown.display.announcer.on_done = announced.put
    # The retained queue state arrives: two wait for local taxes.
    shown.wait_for(lambda s: any(r.service == "taxes" and r.waiting == 2 for r in s.services))

    press_next(device("panel-p1"), "1")

    frame = shown.wait_for(lambda s: s.current is not None and s.current.ticket == "A001")
    screen = shown.display.screen
    assert shows(screen, frame.shot, "ticket", "A001", lit=frame.scene.lit)
    assert shows(screen, frame.shot, "counter", "1", lit=frame.scene.lit)
    assert not shows(screen, frame.shot, "ticket", "A002", lit=frame.scene.lit)
    assert not frame.scene.current.recall  # type: ignore[union-attr]
    # It blinks while new: a lit frame comes, and a dark one.
    lit = shown.wait_for(lambda s: s.lit)
    assert shows(screen, lit.shot, "ticket", "A001", lit=True)
    dark = shown.wait_for(lambda s: s.current is not None and not s.lit)
    assert shows(screen, dark.shot, "ticket", "A001", lit=False)

    announcement = announced.get(timeout=WAIT_S)
    assert announcement.texts == ("Lístok A 1, okienko 1", "Ticket A1, counter 1")
    played = sorted((tmp_path / "sound").glob("*.wav"))
    assert len(played) == 1
    with wave.open(str(played[0])) as wav:
        assert wav.getnframes() == announcement.clip.samples
        assert wav.getnframes() > 2 * chime().samples

    boards = shown.display.boards
    assert boards is not None
    port = boards.bus.port
    assert isinstance(port, SimulatedPort)
    emulated: EmulatedBoards = port.boards
    assert emulated.wait_for(1, "A001", blinking=True, timeout_s=WAIT_S)
    assert emulated.wait_for(9, "A001 1", blinking=True, timeout_s=WAIT_S)
    assert emulated.faces[1].brightness == 10


def test_a_recall_is_marked_and_calls_together_take_turns(
    hub: RunningHub, device: Callable[..., DeviceLink], displays: Callable[..., RunningDisplay]
) -> None:
    for _ in range(3):
        hub.queue.issue("taxes")
    shown = displays(min_show_s=1.0, highlight_s=0.5, sound="none")
    panel = device("panel-p1")
    press_next(panel, "1")
    press_next(panel, "2")
    topic = panel.topics.counter_cmd("1")
    panel.send(topic, p.CounterCommand(msg_id=uuid.uuid4().hex, action="recall"))
    # Each call becomes current in turn; none is skipped.
    seen: list[tuple[str, bool]] = []
    while len(seen) < 3:
        frame = shown.wait_for(lambda s: s.current is not None)
        current = frame.scene.current
        assert current is not None
        if (current.ticket, current.recall) not in seen:
            seen.append((current.ticket, current.recall))
    assert seen == [("A001", False), ("A002", False), ("A001", True)]
    frame = shown.wait_for(lambda s: s.current is not None and s.current.recall)
    assert [c.ticket for c in frame.scene.history] == ["A002"]


def test_a_board_that_stops_answering_becomes_the_displays_health(
    hub: RunningHub, device: Callable[..., DeviceLink], displays: Callable[..., RunningDisplay]
) -> None:
    heard: queue.Queue[DeviceView] = queue.Queue()
    hub.bridge.on_device(heard.put)
    hub.queue.issue("taxes")
    shown = displays(boards_backend="simulated", boards=BOARDS, sound="none", boards_probe_s=60)

    def board_state(state: str) -> None:
        while True:
            view = heard.get(timeout=WAIT_S)
            if view.device_id == "d1" and view.health is not None:
                part = view.health.parts.get("board-1")
                if part is not None and part.state == state:
                    return

    board_state("ok")
    boards = shown.display.boards
    assert boards is not None
    assert isinstance(boards.bus.port, SimulatedPort)
    boards.bus.port.boards.faces[1].answering = False
    press_next(device("panel-p1"), "1")
    board_state("offline")
