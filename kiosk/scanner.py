"""The QR scanner that reads a booking's code, in layers: a backend per kind, one decoder.

A USB 2D barcode scanner is a keyboard to the computer (USB HID): it "types" what it
reads and presses Enter. :class:`EvdevScanner` reads it through the kernel's evdev
interface (:mod:`kiosk.input_events`), grabbing the device so its keys never reach the screen;
:class:`ScanDecoder` turns its key events into text, one line per scan.
:class:`SimulatedScanner` reads lines written to a FIFO instead, for a laptop and the
demo (``echo poradovnik:appointment:12345678 > <fifo>``). :func:`open_scanner` picks
one from the settings.

Each backend reads in a thread of its own and hands every scanned line to a callback
(the kiosk's screen loop takes it from there). A device that is unplugged or not there
yet is retried every :data:`RETRY_S`; a line longer than :data:`MAX_SCAN_CHARS` is
dropped: it is no booking.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import stat
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

from common.kiosk_settings import KioskSettings
from kiosk import input_events
from kiosk.input_events import EV_KEY, KEYS, InputEvent

__all__ = [
    "MAX_SCAN_CHARS",
    "EvdevScanner",
    "ScanDecoder",
    "Scanner",
    "SimulatedScanner",
    "open_scanner",
]

log = logging.getLogger(__name__)

MAX_SCAN_CHARS: Final = 256
"""A scanned line longer than this is dropped unread (a booking's QR text has 31)."""

RETRY_S: Final = 5.0
"""How long a scanner that cannot be opened (unplugged, not there yet) waits to try again."""

OnScan = Callable[[str], None]
"""What a scanner calls with each line it read (in its own thread)."""

ScannerState = Literal["ok", "offline"]
"""A scanner's condition, as its device health part ``scanner`` tells it."""

OnHealth = Callable[[ScannerState, str], None]
"""What a scanner calls with its state and a detail when it changes."""


class ScanDecoder:
    """Turns a keyboard scanner's evdev key events into lines of text.

    Scanners type on a US keyboard layout (their factory setting): letters, digits and
    punctuation, with Shift for capitals and ``:``. Only key presses count (not releases,
    nor repeats); Enter (either one) ends a scan; keys that type nothing are skipped.
    """

    def __init__(self, max_chars: int = MAX_SCAN_CHARS) -> None:
        self.max_chars = max_chars
        self._shifts = {KEYS["KEY_LEFTSHIFT"], KEYS["KEY_RIGHTSHIFT"]}
        self._enters = {KEYS["KEY_ENTER"], KEYS["KEY_KPENTER"]}
        keys: dict[int, tuple[str, str]] = {}
        for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            keys[KEYS[f"KEY_{letter}"]] = (letter.lower(), letter)
        for digit, shifted in zip("1234567890", "!@#$%^&*()", strict=True):
            keys[KEYS[f"KEY_{digit}"]] = (digit, shifted)
            keys[KEYS[f"KEY_KP{digit}"]] = (digit, digit)
        for name, plain, shifted in (
            ("MINUS", "-", "_"),
            ("EQUAL", "=", "+"),
            ("SEMICOLON", ";", ":"),
            ("APOSTROPHE", "'", '"'),
            ("COMMA", ",", "<"),
            ("DOT", ".", ">"),
            ("SLASH", "/", "?"),
            ("BACKSLASH", "\\", "|"),
            ("LEFTBRACE", "[", "{"),
            ("RIGHTBRACE", "]", "}"),
            ("GRAVE", "`", "~"),
            ("SPACE", " ", " "),
            ("KPMINUS", "-", "-"),
            ("KPDOT", ".", "."),
            ("KPSLASH", "/", "/"),
        ):
            keys[KEYS[f"KEY_{name}"]] = (plain, shifted)
        self._keys = keys
        self._shifted: set[int] = set()
        self._line: list[str] = []
        self._overflow = False

    def feed(self, event: InputEvent) -> str | None:
        """Take one event; the scanned line when it ends one (Enter), else ``None``."""
        if event.type != EV_KEY:
            return None
        code, value = event.code, event.value
        if code in self._shifts:
            if value:
                self._shifted.add(code)
            else:
                self._shifted.discard(code)
            return None
        if value != 1:  # a release (0) or the keyboard's repeat (2)
            return None
        if code in self._enters:
            line, overflow = "".join(self._line), self._overflow
            self._line, self._overflow = [], False
            if overflow:
                log.warning("dropped a scan longer than %d characters", self.max_chars)
                return None
            return line
        typed = self._keys.get(code)
        if typed is None:
            return None
        if len(self._line) >= self.max_chars:
            self._overflow = True
            return None
        self._line.append(typed[1] if self._shifted else typed[0])
        return None


class Scanner(ABC):
    """A source of scanned lines, read in a thread of its own until :meth:`stop`."""

    def __init__(self, description: str) -> None:
        self.description = description
        """Which scanner this is, for the log."""
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None

    def start(self, on_scan: OnScan, on_health: OnHealth | None = None) -> None:
        """Read scans in a thread, calling ``on_scan`` with each line.

        ``on_health`` hears ``("ok", description)`` whenever the scanner is opened, and
        ``("offline", why)`` when it cannot be opened or is gone (it is tried again).
        """
        self._thread = threading.Thread(
            target=self._run,
            args=(on_scan, on_health or (lambda state, detail: None)),
            name="kiosk-scanner",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop reading and release the device."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=10)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self, on_scan: OnScan, on_health: OnHealth) -> None:
        problem: str | None = None
        while not self._stopping.is_set():
            try:
                fd = self._open()
            except OSError as exc:
                if str(exc) != problem:  # said once, not every few seconds
                    problem = str(exc)
                    log.error("cannot read the scanner (%s): %s", self.description, exc)
                    on_health("offline", f"cannot open: {exc}"[:200])
                self._stopping.wait(RETRY_S)
                continue
            problem = None
            log.info("reading the scanner: %s", self.description)
            on_health("ok", self.description[:200])
            try:
                self._read_until_stopped(fd, on_scan)
            except OSError as exc:
                log.error("the scanner (%s) is gone: %s", self.description, exc)
                problem = f"gone: {exc}"
                on_health("offline", problem[:200])
            finally:
                self._close()

    def _read_until_stopped(self, fd: int, on_scan: OnScan) -> None:
        while not self._stopping.is_set():
            readable, _, _ = select.select([fd, self._wake_r], [], [])
            if fd not in readable:
                continue
            for line in self._read():
                try:
                    on_scan(line)
                except Exception:
                    log.exception("handling a scan failed")

    @abstractmethod
    def _open(self) -> int:
        """Open the source; its file descriptor to wait on. :class:`OSError` if it cannot."""

    @abstractmethod
    def _read(self) -> list[str]:
        """The lines completed by what can be read now (without blocking)."""

    @abstractmethod
    def _close(self) -> None:
        """Close the source (it may be opened again)."""


class EvdevScanner(Scanner):
    """A USB HID (keyboard) scanner read through evdev, grabbed so its keys reach nothing else.

    ``device`` is its event device; ``/dev/input/by-id/usb-…-event-kbd`` keeps its name
    across reboots and ports. The service user needs read access (group ``input``).
    """

    def __init__(self, device: Path) -> None:
        super().__init__(f"evdev {device}")
        self.path = device
        self._fd: int | None = None
        self._decoder = ScanDecoder()

    def _open(self) -> int:
        # Grabbed: its keys go to the kiosk only, never to the screen's input.
        self._fd = input_events.open_grabbed(str(self.path))
        self._decoder = ScanDecoder()
        return self._fd

    def _read(self) -> list[str]:
        assert self._fd is not None
        events = input_events.read_events(self._fd)
        return [line for event in events if (line := self._decoder.feed(event)) is not None]

    def _close(self) -> None:
        if self._fd is not None:
            input_events.release(self._fd)
            self._fd = None


class SimulatedScanner(Scanner):
    """No scanner: each line written to the FIFO ``path`` is a scan (created if missing).

    ``echo poradovnik:appointment:12345678 > /var/lib/poradovnik/kiosk-scanner`` scans a
    booking's QR code.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(f"simulated, lines written to {path}")
        self.path = path
        self._fd: int | None = None
        self._pending = b""

    def _open(self) -> int:
        try:
            os.mkfifo(self.path, 0o660)
        except FileExistsError:
            if not stat.S_ISFIFO(self.path.stat().st_mode):
                raise OSError(f"{self.path} exists and is not a FIFO") from None
        # Read and write: the FIFO never reads as ended while no writer has it open.
        self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        self._pending = b""
        return self._fd

    def _read(self) -> list[str]:
        assert self._fd is not None
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return []
        *lines, self._pending = (self._pending + data).split(b"\n")
        if len(self._pending) > MAX_SCAN_CHARS * 4:
            log.warning("dropped a simulated scan longer than %d bytes", MAX_SCAN_CHARS * 4)
            self._pending = b""
        return [
            line.decode("utf-8", "replace").strip()
            for line in lines
            if len(line) <= MAX_SCAN_CHARS * 4
        ]

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def open_scanner(settings: KioskSettings, data_dir: Path) -> Scanner | None:
    """The scanner the ``[kiosk]`` settings describe (not started), ``None`` for none."""
    if settings.scanner == "none":
        return None
    if settings.scanner == "simulated":
        return SimulatedScanner(settings.scanner_device or data_dir / "kiosk-scanner")
    assert settings.scanner_device is not None
    return EvdevScanner(settings.scanner_device)
