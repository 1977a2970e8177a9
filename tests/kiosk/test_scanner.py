"""The kiosk's QR scanner: the kernel's input event records and codes, a keyboard
scanner's key events decoded into scans, the simulated scanner's FIFO, the evdev backend's
refusal of what is no event device, and the choice of backend by the settings."""

from __future__ import annotations

import os
import queue
import re
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kiosk_helpers import WAIT_S
from pydantic import ValidationError

from common.kiosk_settings import KioskSettings
from kiosk import input_events
from kiosk.input_events import EV_KEY, EV_MSC, EV_SYN, KEYS, MSC_SCAN, SYN_REPORT, InputEvent
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
        return KEYS[f"KEY_{char}"], False
    if char.isalpha():
        return KEYS[f"KEY_{char.upper()}"], char.isupper()
    if char in SHIFTED:
        return KEYS[f"KEY_{SHIFTED[char]}"], True
    return KEYS[f"KEY_{PLAIN[char]}"], False


def press(code: int, value: int) -> list[InputEvent]:
    """One key change as a USB keyboard reports it: scan code, key, report."""
    now = time.time()
    sec, usec = int(now), int(now % 1 * 1_000_000)
    return [
        InputEvent(sec, usec, EV_MSC, MSC_SCAN, 0x70000 + code),
        InputEvent(sec, usec, EV_KEY, code, value),
        InputEvent(sec, usec, EV_SYN, SYN_REPORT, 0),
    ]


def typed(text: str, *, enter: int = KEYS["KEY_ENTER"]) -> list[InputEvent]:
    """The events of a scanner typing ``text`` and pressing Enter."""
    events: list[InputEvent] = []
    for char in text:
        code, shift = key_codes(char)
        if shift:
            events += press(KEYS["KEY_LEFTSHIFT"], 1)
        events += press(code, 1) + press(code, 0)
        if shift:
            events += press(KEYS["KEY_LEFTSHIFT"], 0)
    return events + press(enter, 1) + press(enter, 0)


def decode_all(decoder: ScanDecoder, events: list[InputEvent]) -> list[str]:
    return [line for event in events if (line := decoder.feed(event)) is not None]


def test_a_booking_qr_typed_by_the_scanner_is_its_code() -> None:
    decoder = ScanDecoder()
    assert decode_all(decoder, typed(booking_qr("12345678"))) == ["poradovnik:appointment:12345678"]
    assert parse_checkin_qr("poradovnik:appointment:12345678") == "12345678"
    # Shift gives capitals; keypad digits and the keypad's Enter work as well.
    keypad = [e for d in "4711" for e in press(KEYS[f"KEY_KP{d}"], 1)]
    assert decode_all(decoder, typed("Ab_C") + keypad + press(KEYS["KEY_KPENTER"], 1)) == [
        "Ab_C",
        "4711",
    ]


def test_repeats_releases_and_keys_that_type_nothing_are_skipped() -> None:
    decoder = ScanDecoder()
    events = (
        press(KEYS["KEY_1"], 1)
        + press(KEYS["KEY_1"], 2)  # the keyboard's auto-repeat
        + press(KEYS["KEY_F5"], 1)
        + press(KEYS["KEY_LEFTCTRL"], 1)
        + press(KEYS["KEY_2"], 1)
        + press(KEYS["KEY_ENTER"], 1)
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


HEADER = Path("/usr/include/linux/input-event-codes.h")
"""The kernel's input event codes (Debian's linux-libc-dev)."""


def test_the_codes_are_the_kernels() -> None:
    pattern = r"^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+)\b"
    defined = dict(re.findall(pattern, HEADER.read_text(), re.MULTILINE))
    ours = {
        **KEYS,
        "EV_SYN": EV_SYN,
        "EV_KEY": EV_KEY,
        "EV_MSC": EV_MSC,
        "MSC_SCAN": MSC_SCAN,
        "SYN_REPORT": SYN_REPORT,
    }
    assert {name: int(defined[name], 0) for name in ours} == ours
    # _IOW('E', 0x90, int) of linux/input.h, as the kernel's ioctl macros encode it.
    assert input_events.EVIOCGRAB == 0x40044590


def test_event_records_read_from_the_device_are_decoded() -> None:
    events = typed(booking_qr("12345678"))
    # struct input_event: a struct timeval (two C longs), then __u16 type, __u16 code and
    # __s32 value; a read returns whole records.
    assert 2 * struct.calcsize("@l") + 2 + 2 + 4 == input_events.EVENT_SIZE
    read, write = os.pipe()
    try:
        os.write(write, b"".join(event.pack() for event in events))
        got: list[InputEvent] = []
        while len(got) < len(events):
            got += input_events.read_events(read)
    finally:
        os.close(read)
        os.close(write)
    assert got == events
    assert decode_all(ScanDecoder(), got) == ["poradovnik:appointment:12345678"]


def test_what_is_no_event_device_is_refused_clearly(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "not-a-device")
    scanner = EvdevScanner(tmp_path / "not-a-device")
    health: queue.Queue[tuple[str, str]] = queue.Queue()
    scanner.start(lambda line: None, lambda state, detail: health.put((state, detail)))
    try:
        state, detail = health.get(timeout=WAIT_S)
    finally:
        scanner.stop()
    assert state == "offline"
    assert "cannot open" in detail
    assert "ioctl" in detail  # a FIFO cannot be grabbed: it is no input device


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
