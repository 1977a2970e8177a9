"""LED boards: the frame protocol, and the driver over a socat pty pair with emulated boards
that check each frame's checksum and acknowledge it."""

from __future__ import annotations

import queue
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from display_helpers import answering
from process_helpers import Process

from common.display_settings import BoardSettings
from common.errors import PoradovnikError
from display.boards.bus import BoardBus, open_serial
from display.boards.driver import LedBoards
from display.boards.emulator import EmulatedBoards, SimulatedPort
from display.boards.protocols import Command, FrameError, protocol, protocol_names
from display.boards.protocols.poradovnik import checksum

WAIT_S = 10.0
FRAMES = protocol("poradovnik")


def test_the_frame_is_as_documented() -> None:
    frame = FRAMES.encode_command(3, Command("show", "A042"))
    body = b"03SA042"
    assert frame == b"\x02" + body + checksum(body).encode() + b"\x03"
    assert checksum(b"03SA042") == f"{0x30 ^ 0x33 ^ 0x53 ^ 0x41 ^ 0x30 ^ 0x34 ^ 0x32:02X}"
    assert (
        FRAMES.encode_command(12, Command("brightness", level=15))
        == b"\x020CLF" + checksum(b"0CLF").encode() + b"\x03"
    )
    assert FRAMES.parse_command(FRAMES.encode_command(254, Command("blink", "B7 3"))) == (
        254,
        Command("blink", "B7 3"),
    )
    assert FRAMES.parse_command(FRAMES.encode_command(1, Command("clear"))) == (1, Command("clear"))
    assert FRAMES.parse_reply(FRAMES.encode_reply(7, ok=False)) == (7, False)
    # Text is cut to 32 characters and kept printable, so STX and ETX never occur inside.
    long = FRAMES.encode_command(1, Command("show", "Š\x03" + "x" * 40))
    assert FRAMES.parse_command(long)[1].text == "??" + "x" * 30


def test_bad_frames_are_refused() -> None:
    frame = bytearray(FRAMES.encode_command(3, Command("show", "A042")))
    frame[5] ^= 0x01  # one bit flipped on the wire
    with pytest.raises(FrameError, match="checksum") as caught:
        FRAMES.parse_command(bytes(frame))
    assert caught.value.address == 3
    with pytest.raises(FrameError):
        FRAMES.parse_command(b"\x0203S")
    with pytest.raises(ValueError, match="address"):
        FRAMES.encode_command(255, Command("clear"))


def test_protocols_are_found_by_name() -> None:
    assert "poradovnik" in protocol_names()
    with pytest.raises(
        PoradovnikError,
        match="no LED board protocol 'acme'; known: alpha, alpha-checksum, poradovnik",
    ):
        protocol("acme")


@pytest.fixture
def pty_pair(tmp_path: Path, processes: Callable[..., Process]) -> Iterator[tuple[str, str]]:
    """Two serial ports joined by socat: what one end writes, the other reads."""
    a, b = tmp_path / "display-end", tmp_path / "boards-end"
    socat = processes(["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"])
    socat.wait_for_line(  # socat says when both ends stand
        lambda line: "starting data transfer loop" in line, WAIT_S, what="that it runs"
    )
    yield str(a), str(b)
    socat.stop(timeout=WAIT_S)


@pytest.fixture
def emulated(pty_pair: tuple[str, str]) -> Iterator[EmulatedBoards]:
    """Boards 1, 2 and 9 on the far end of the pty pair, answering in a thread."""
    with answering(EmulatedBoards(FRAMES, [1, 2, 9]), pty_pair[1]) as boards:
        yield boards


def test_the_bus_over_a_serial_port(pty_pair: tuple[str, str], emulated: EmulatedBoards) -> None:
    port = open_serial(
        pty_pair[0], baudrate=9600, timeout_s=0.2, rs485="auto"
    )  # a pty has no RS-485
    bus = BoardBus(FRAMES, port=port, retries=1)
    try:
        assert bus.send(2, Command("show", "B007")) is None
        assert (emulated.faces[2].text, emulated.faces[2].frames) == ("B007", 1)
        assert bus.send(9, Command("brightness", level=3)) is None
        assert emulated.faces[9].brightness == 3
        # A frame damaged on the wire is refused by the board.
        frame = bytearray(FRAMES.encode_command(2, Command("show", "X999")))
        frame[4] ^= 0x01
        port.write(bytes(frame))
        assert FRAMES.parse_reply(FRAMES.read_frame(port)) == (2, False)
        assert emulated.faces[2].refused == 1
        assert emulated.faces[2].text == "B007"
        # A board nobody answers for.
        assert bus.send(77, Command("clear")) == "no answer"
    finally:
        port.close()  # type: ignore[attr-defined]


def test_rs485_required_on_a_port_without_it(pty_pair: tuple[str, str]) -> None:
    with pytest.raises(PoradovnikError, match="no RS-485 mode"):
        open_serial(pty_pair[0], baudrate=9600, timeout_s=0.2, rs485="on")
    with pytest.raises(PoradovnikError, match="cannot open the LED boards' serial port"):
        open_serial("/dev/nonexistent-tty", baudrate=9600, timeout_s=0.2)


def test_the_driver_blinks_then_shows_and_reports_a_silent_board(
    pty_pair: tuple[str, str], emulated: EmulatedBoards
) -> None:
    port = open_serial(pty_pair[0], baudrate=9600, timeout_s=0.1)
    health: queue.Queue[tuple[int, str | None]] = queue.Queue()
    boards = LedBoards(
        BoardBus(FRAMES, port=port, retries=2),
        [
            BoardSettings(address=1, counter="1", brightness=7),
            BoardSettings(address=2, counter="2"),
        ],
        blink_s=0.3,
        probe_s=0.2,
        on_health=lambda address, problem: health.put((address, problem)),
    )
    boards.start()
    try:
        boards.show(1, "A042", blink=True)
        assert emulated.wait_for(1, "A042", blinking=True, timeout_s=WAIT_S)
        assert emulated.faces[1].brightness == 7
        assert emulated.wait_for(1, "A042", blinking=False, timeout_s=WAIT_S)  # blinking ends
        assert {health.get(timeout=WAIT_S) for _ in range(2)} == {(1, None), (2, None)}
        emulated.faces[2].answering = False  # it broke
        boards.show(2, "B001")
        assert health.get(timeout=WAIT_S) == (2, "no answer")
        assert emulated.faces[2].text == ""
        emulated.faces[2].answering = True  # repaired: it is tried again, and greeted
        emulated.faces[2].brightness = 15
        assert health.get(timeout=WAIT_S) == (2, None)
        assert emulated.wait_for(2, "B001", blinking=False, timeout_s=WAIT_S)
        assert emulated.faces[2].brightness == 10
    finally:
        boards.stop()
        port.close()  # type: ignore[attr-defined]


def test_the_simulated_bus_needs_no_port() -> None:
    emulated = EmulatedBoards(FRAMES, [5])
    bus = BoardBus(FRAMES, port=SimulatedPort(emulated))
    assert bus.send(5, Command("blink", "C003 4")) is None
    assert (emulated.faces[5].text, emulated.faces[5].blinking) == ("C003 4", True)
    assert bus.send(6, Command("clear")) == "no answer"
    assert re.fullmatch(r"\x02.*\x03", FRAMES.encode_command(5, Command("clear")).decode())
