"""LED boards speaking the Alpha Sign Communications Protocol: packets checked byte by byte
against the specification's packet layout, and the bus and the driver over a socat pty
pair with emulated signs."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest
from display_helpers import answering
from process_helpers import Process
from pydantic import ValidationError

from common.display_settings import BoardSettings, DisplaySettings
from display.boards.bus import BoardBus, open_serial
from display.boards.driver import LedBoards
from display.boards.emulator import EmulatedBoards, SimulatedPort
from display.boards.protocols import Command, FrameError, protocol

WAIT_S = 10.0
PLAIN = protocol("alpha")
CHECKED = protocol("alpha-checksum")


def test_a_write_text_packet_is_laid_out_as_the_specification_says() -> None:
    assert PLAIN.encode_command(3, Command("show", "A042")) == (
        b"\x00\x00\x00\x00\x00"  # NUL ×5: the sign finds the baud rate
        b"\x01"  # SOH: start of header
        b"Z"  # type code Z: all sign types
        b"03"  # sign address 03, two ASCII hex digits
        b"\x02"  # STX: start of text
        b"A"  # command code A: write TEXT file
        b"A"  # file label A
        b"\x1b0b"  # mode field: ESC, display position 0 (fill), mode code b (hold)
        b"A042"  # the text
        b"\x04"  # EOT: end of transmission
    )
    assert PLAIN.encode_command(254, Command("blink", "B7 3")) == (
        b"\x00\x00\x00\x00\x00\x01ZFE\x02AA"  # NUL×5 SOH Z, address FE, STX, A, A
        b"\x1b0c"  # ESC, fill, mode code c (flash)
        b"B7 3\x04"
    )
    assert PLAIN.encode_command(1, Command("clear")) == (
        b"\x00\x00\x00\x00\x00\x01Z01\x02AA\x1b0b\x04"  # file A written empty
    )


def test_the_checksum_variant_sums_stx_to_etx() -> None:
    # 02+41+41+1B+30+62+41+30+34+32+03 (STX "AA" ESC "0b" "A042" ETX) = 0x020B
    assert CHECKED.encode_command(3, Command("show", "A042")) == (
        b"\x00\x00\x00\x00\x00\x01Z03"  # NUL×5, SOH, type Z, address 03
        b"\x02AA\x1b0bA042"  # STX, write TEXT file A, hold, the text
        b"\x03"  # ETX: the checksum follows
        b"020B"  # the 16-bit sum, four uppercase ASCII hex digits
        b"\x04"  # EOT
    )
    # 02+41+41+1B+30+63+42+03 (STX "AA" ESC "0c" "B" ETX) = 0x0177; address 16 is "10"
    assert CHECKED.encode_command(16, Command("blink", "B")) == (
        b"\x00\x00\x00\x00\x00\x01Z10\x02AA\x1b0cB\x030177\x04"
    )


def test_packets_read_back_as_a_sign_reads_them() -> None:
    for frames in (PLAIN, CHECKED):
        for command in (Command("show", "A042 3"), Command("blink", "C1"), Command("clear")):
            assert frames.parse_command(frames.encode_command(7, command)) == (7, command)
    # Noise before the packet (a sign looks for SOH) is skipped.
    assert PLAIN.parse_command(b"\xff\x17" + PLAIN.encode_command(9, Command("show", "X"))) == (
        9,
        Command("show", "X"),
    )


def test_control_bytes_never_reach_the_sign_and_text_is_bounded() -> None:
    packet = PLAIN.encode_command(3, Command("show", "A\x04\x01\x1b\x03Š" + "x" * 300))
    body = packet[packet.index(b"\x1b0b") + 3 : -1]
    assert body == b"A?????" + b"x" * 119  # 125 characters, all printable
    assert PLAIN.parse_command(packet)[1].text == "A?????" + "x" * 119


@pytest.mark.parametrize(
    ("packet", "address"),
    [
        (b"\x00\x01Z0G\x02AA\x1b0bX\x04", None),  # not a hex address
        (b"\x00\x01Z3\x02AA\x1b0bX\x04", None),  # one digit of address
        (b"\x00\x01Z03\x02AA\x1b0bX", None),  # cut short: no EOT
        (b"\x00\x01Z03\x02AA\x1b0zX\x04", 3),  # an unknown mode code
        (b"\x00\x01Z03\x02E$\x04", 3),  # another command (write special function)
    ],
)
def test_bad_packets_are_refused(packet: bytes, address: int | None) -> None:
    with pytest.raises(FrameError) as caught:
        PLAIN.parse_command(packet)
    assert caught.value.address == address


def test_a_damaged_packet_fails_its_checksum() -> None:
    packet = bytearray(CHECKED.encode_command(3, Command("show", "A042")))
    packet[-8] ^= 0x01  # one bit of the text flipped on the wire
    with pytest.raises(FrameError, match="checksum") as caught:
        CHECKED.parse_command(bytes(packet))
    assert caught.value.address == 3
    with pytest.raises(FrameError, match="no checksum"):
        CHECKED.parse_command(PLAIN.encode_command(3, Command("show", "A042")))


def test_brightness_is_the_signs_own_and_sends_nothing() -> None:
    emulated = EmulatedBoards(PLAIN, [5])
    bus = BoardBus(PLAIN, port=SimulatedPort(emulated))
    assert PLAIN.encode_command(5, Command("brightness", level=3)) == b""
    assert bus.send(5, Command("brightness", level=3)) is None
    assert emulated.faces[5].frames == 0
    assert bus.send(5, Command("show", "A1")) is None  # written, not waited for
    assert (emulated.faces[5].text, emulated.faces[5].frames) == ("A1", 1)


@pytest.mark.parametrize(
    ("framing", "expected"), [("8N1", (8, "N", 1)), ("7E1", (7, "E", 1)), ("7E2", (7, "E", 2))]
)
def test_the_framing_setting_reaches_the_port(
    framing: Literal["8N1", "7E1", "7E2"], expected: tuple[int, str, int]
) -> None:
    # A pty cannot take 7 data bits; pyserial's loopback port keeps what it is given.
    port = open_serial("loop://", baudrate=9600, timeout_s=0.2, rs485="off", framing=framing)
    try:
        assert (port.bytesize, port.parity, port.stopbits) == expected  # type: ignore[attr-defined]
    finally:
        port.close()  # type: ignore[attr-defined]
    assert DisplaySettings(boards_framing=framing).boards_framing == framing
    with pytest.raises(ValidationError):
        DisplaySettings(boards_framing="9X9")  # type: ignore[arg-type]


@pytest.fixture
def pty_pair(tmp_path: Path, processes: Callable[..., Process]) -> Iterator[tuple[str, str]]:
    """Two serial ports joined by socat: what one end writes, the other reads."""
    a, b = tmp_path / "display-end", tmp_path / "signs-end"
    socat = processes(["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"])
    socat.wait_for_line(
        lambda line: "starting data transfer loop" in line, WAIT_S, what="that it runs"
    )
    yield str(a), str(b)
    socat.stop(timeout=WAIT_S)


@pytest.fixture
def signs(pty_pair: tuple[str, str]) -> Iterator[EmulatedBoards]:
    """Signs 1 and 2 (checksum variant) on the far end of the pty pair."""
    with answering(EmulatedBoards(CHECKED, [1, 2]), pty_pair[1]) as boards:
        yield boards


def test_signs_over_a_serial_port(pty_pair: tuple[str, str], signs: EmulatedBoards) -> None:
    port = open_serial(pty_pair[0], baudrate=9600, timeout_s=0.2)
    bus = BoardBus(CHECKED, port=port, retries=1)
    try:
        # A packet damaged on the wire is dropped by the sign; the next good one shows.
        packet = bytearray(CHECKED.encode_command(2, Command("show", "X999")))
        packet[-8] ^= 0x01
        port.write(bytes(packet))
        assert bus.send(2, Command("show", "B007")) is None
        assert signs.wait_for(2, "B007", blinking=False, timeout_s=WAIT_S)
        assert (signs.faces[2].frames, signs.faces[2].refused) == (1, 1)
        assert bus.send(1, Command("blink", "A001 1")) is None
        assert signs.wait_for(1, "A001 1", blinking=True, timeout_s=WAIT_S)
        assert bus.send(1, Command("clear")) is None
        assert signs.wait_for(1, "", blinking=False, timeout_s=WAIT_S)
    finally:
        port.close()  # type: ignore[attr-defined]


def test_the_driver_blinks_then_shows_on_alpha_signs(
    pty_pair: tuple[str, str], signs: EmulatedBoards
) -> None:
    port = open_serial(pty_pair[0], baudrate=9600, timeout_s=0.1)
    health: queue.Queue[tuple[int, str | None]] = queue.Queue()
    boards = LedBoards(
        BoardBus(CHECKED, port=port),
        [BoardSettings(address=1, counter="1"), BoardSettings(address=2, hall=True)],
        blink_s=0.3,
        on_health=lambda address, problem: health.put((address, problem)),
    )
    boards.start()
    try:
        boards.show(1, "A042", blink=True)
        boards.show(2, "A042 1")
        assert signs.wait_for(1, "A042", blinking=True, timeout_s=WAIT_S)
        assert signs.wait_for(2, "A042 1", blinking=False, timeout_s=WAIT_S)
        assert signs.wait_for(1, "A042", blinking=False, timeout_s=WAIT_S)  # blinking ends
        assert {health.get(timeout=WAIT_S) for _ in range(2)} == {(1, None), (2, None)}
    finally:
        boards.stop()
        port.close()  # type: ignore[attr-defined]
