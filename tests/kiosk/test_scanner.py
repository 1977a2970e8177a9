"""The kiosk's QR scanner: a keyboard scanner's evdev key events decoded into scans, the
simulated scanner's FIFO, the evdev backend on a real uinput device where the kernel has
one, and the choice of backend by the settings."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from evdev import InputDevice, InputEvent, UInput, ecodes
from kiosk_helpers import WAIT_S
from pydantic import ValidationError

from common.kiosk_settings import KioskSettings
from kiosk.scanner import (
    MAX_SCAN_CHARS,
    EvdevScanner,
    ScanDecoder,
    Scanner,
    SimulatedScanner,
    open_scanner,
)
from sync_agent.protocol import booking_qr, parse_checkin_qr

SHIFTED = {":": "SEMICOLON", "_": "MINUS", "?": "SLASH"}
PLAIN = {":": "", "-": "MINUS", ";": "SEMICOLON", "/": "SLASH", ".": "DOT", " ": "SPACE"}


def key_codes(char: str) -> tuple[int, bool]:
    """The key a US-layout keyboard scanner presses for ``char``, and whether with Shift."""
    if char.isdigit():
        return getattr(ecodes, f"KEY_{char}"), False
    if char.isalpha():
        return getattr(ecodes, f"KEY_{char.upper()}"), char.isupper()
    if char in SHIFTED:
        return getattr(ecodes, f"KEY_{SHIFTED[char]}"), True
    return getattr(ecodes, f"KEY_{PLAIN[char]}"), False


def press(code: int, value: int) -> list[InputEvent]:
    """One key change as a USB keyboard reports it: scan code, key, report."""
    now = time.time()
    sec, usec = int(now), int(now % 1 * 1_000_000)
    return [
        InputEvent(sec, usec, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70000 + code),
        InputEvent(sec, usec, ecodes.EV_KEY, code, value),
        InputEvent(sec, usec, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
    ]


def typed(text: str, *, enter: int = ecodes.KEY_ENTER) -> list[InputEvent]:
    """The events of a scanner typing ``text`` and pressing Enter."""
    events: list[InputEvent] = []
    for char in text:
        code, shift = key_codes(char)
        if shift:
            events += press(ecodes.KEY_LEFTSHIFT, 1)
        events += press(code, 1) + press(code, 0)
        if shift:
            events += press(ecodes.KEY_LEFTSHIFT, 0)
    return events + press(enter, 1) + press(enter, 0)


def decode_all(decoder: ScanDecoder, events: list[InputEvent]) -> list[str]:
    return [line for event in events if (line := decoder.feed(event)) is not None]


def test_a_booking_qr_typed_by_the_scanner_is_its_code() -> None:
    decoder = ScanDecoder()
    assert decode_all(decoder, typed(booking_qr("12345678"))) == ["poradovnik:appointment:12345678"]
    assert parse_checkin_qr("poradovnik:appointment:12345678") == "12345678"
    # Shift gives capitals; keypad digits and the keypad's Enter work as well.
    keypad = [e for d in "4711" for e in press(getattr(ecodes, f"KEY_KP{d}"), 1)]
    assert decode_all(decoder, typed("Ab_C") + keypad + press(ecodes.KEY_KPENTER, 1)) == [
        "Ab_C",
        "4711",
    ]


def test_repeats_releases_and_keys_that_type_nothing_are_skipped() -> None:
    decoder = ScanDecoder()
    events = (
        press(ecodes.KEY_1, 1)
        + press(ecodes.KEY_1, 2)  # the keyboard's auto-repeat
        + press(ecodes.KEY_F5, 1)
        + press(ecodes.KEY_LEFTCTRL, 1)
        + press(ecodes.KEY_2, 1)
        + press(ecodes.KEY_ENTER, 1)
    )
    assert decode_all(decoder, events) == ["12"]


def test_an_overlong_scan_is_dropped_and_the_next_one_read() -> None:
    decoder = ScanDecoder()
    flood = typed("9" * (MAX_SCAN_CHARS + 50))
    assert decode_all(decoder, flood + typed("87654321")) == ["87654321"]


def test_a_bare_code_and_foreign_qr_codes() -> None:
    assert parse_checkin_qr(" 87654321 ") == "87654321"
    assert parse_checkin_qr("https://example.com/12345678") is None
    assert parse_checkin_qr("poradovnik:appointment:1234") is None


def started(scanner: Scanner) -> queue.Queue[str]:
    scans: queue.Queue[str] = queue.Queue()
    health: queue.Queue[tuple[str, str]] = queue.Queue()
    scanner.start(scans.put, lambda state, detail: health.put((state, detail)))
    assert health.get(timeout=WAIT_S) == ("ok", scanner.description)
    return scans


@pytest.fixture
def fifo_scanner(tmp_path: Path) -> Iterator[SimulatedScanner]:
    scanner = SimulatedScanner(tmp_path / "scanner")
    yield scanner
    scanner.stop()


def test_the_simulated_scanner_reads_lines_written_to_its_fifo(
    fifo_scanner: SimulatedScanner,
) -> None:
    scans = started(fifo_scanner)
    path = fifo_scanner.path
    # Each writer opens, writes and closes, as `echo … > fifo` does; the reader goes on.
    for text in (booking_qr("11112222") + "\n", "x" * (MAX_SCAN_CHARS * 5) + "\n33334444\n"):
        with path.open("w") as out:
            out.write(text)
    assert scans.get(timeout=WAIT_S) == "poradovnik:appointment:11112222"
    assert scans.get(timeout=WAIT_S) == "33334444"  # the flood between was dropped
    assert scans.empty()


def test_the_simulated_scanner_refuses_a_file_that_is_no_fifo(tmp_path: Path) -> None:
    (tmp_path / "scanner").write_text("not a fifo")
    scanner = SimulatedScanner(tmp_path / "scanner")
    health: queue.Queue[tuple[str, str]] = queue.Queue()
    scanner.start(lambda line: None, lambda state, detail: health.put((state, detail)))
    try:
        state, detail = health.get(timeout=WAIT_S)
        assert state == "offline"
        assert "is not a FIFO" in detail
    finally:
        scanner.stop()


def uinput_problem() -> str | None:
    """Why a scanner cannot be emulated through uinput here, or ``None`` if it can."""
    if not os.path.exists("/dev/uinput"):
        return "no /dev/uinput: this kernel has no uinput driver (a container or VM without it)"
    if not os.access("/dev/uinput", os.W_OK):
        return "/dev/uinput is not writable by this user"
    return None


@pytest.mark.skipif(uinput_problem() is not None, reason=str(uinput_problem()))
def test_a_uinput_keyboard_scanner_is_grabbed_and_read() -> None:
    keys = [e.code for e in typed(booking_qr("12345678")) if e.type == ecodes.EV_KEY]
    with UInput({ecodes.EV_KEY: sorted(set(keys))}, name="poradovnik test scanner") as device:
        scanner = EvdevScanner(Path(device.device.path))
        try:
            scans = started(scanner)
            other = InputDevice(device.device.path)
            with pytest.raises(OSError, match="busy"):
                other.grab()  # the kiosk holds it: its keys reach nothing else
            other.close()
            for event in typed(booking_qr("12345678")):
                device.write(event.type, event.code, event.value)
            assert scans.get(timeout=WAIT_S) == "poradovnik:appointment:12345678"
        finally:
            scanner.stop()


def test_the_settings_choose_the_scanner(tmp_path: Path) -> None:
    assert open_scanner(KioskSettings(), tmp_path) is None
    simulated = open_scanner(KioskSettings(scanner="simulated"), tmp_path)
    assert isinstance(simulated, SimulatedScanner)
    assert simulated.path == tmp_path / "kiosk-scanner"
    device = Path("/dev/input/by-id/usb-scanner-event-kbd")
    evdev_scanner = open_scanner(KioskSettings(scanner="evdev", scanner_device=device), tmp_path)
    assert isinstance(evdev_scanner, EvdevScanner)
    assert evdev_scanner.path == device
    with pytest.raises(ValidationError, match="scanner_device"):
        KioskSettings(scanner="evdev")
