"""The Linux input event interface (evdev), read straight from an event device.

A USB barcode scanner is a keyboard: the kernel reports its keys on
``/dev/input/eventN`` as ``struct input_event`` records (``linux/input.h``). This module
reads those records and grabs the device (``EVIOCGRAB``) so its keys reach no other
program. It needs only the standard library: python-evdev, the usual binding, ships no
wheels for the Raspberry Pi, and a device installs from wheels only.

The constants are the kernel's own (``linux/input-event-codes.h``); only those a
keyboard scanner uses are here. The tests check them against that header.
"""

from __future__ import annotations

import fcntl
import os
import struct
from typing import Final, NamedTuple

EV_SYN: Final = 0x00
EV_KEY: Final = 0x01
EV_MSC: Final = 0x04
SYN_REPORT: Final = 0
MSC_SCAN: Final = 0x04

KEYS: Final[dict[str, int]] = {
    **{f"KEY_{d}": 2 + i for i, d in enumerate("123456789")},
    "KEY_0": 11,
    "KEY_MINUS": 12,
    "KEY_EQUAL": 13,
    **{f"KEY_{c}": 16 + i for i, c in enumerate("QWERTYUIOP")},
    "KEY_LEFTBRACE": 26,
    "KEY_RIGHTBRACE": 27,
    "KEY_ENTER": 28,
    "KEY_LEFTCTRL": 29,
    **{f"KEY_{c}": 30 + i for i, c in enumerate("ASDFGHJKL")},
    "KEY_SEMICOLON": 39,
    "KEY_APOSTROPHE": 40,
    "KEY_GRAVE": 41,
    "KEY_LEFTSHIFT": 42,
    "KEY_BACKSLASH": 43,
    **{f"KEY_{c}": 44 + i for i, c in enumerate("ZXCVBNM")},
    "KEY_COMMA": 51,
    "KEY_DOT": 52,
    "KEY_SLASH": 53,
    "KEY_RIGHTSHIFT": 54,
    "KEY_SPACE": 57,
    "KEY_F5": 63,
    "KEY_KP7": 71,
    "KEY_KP8": 72,
    "KEY_KP9": 73,
    "KEY_KPMINUS": 74,
    "KEY_KP4": 75,
    "KEY_KP5": 76,
    "KEY_KP6": 77,
    "KEY_KP1": 79,
    "KEY_KP2": 80,
    "KEY_KP3": 81,
    "KEY_KP0": 82,
    "KEY_KPDOT": 83,
    "KEY_KPENTER": 96,
    "KEY_KPSLASH": 98,
}
"""Key codes by their names in ``linux/input-event-codes.h``."""

_EVENT: Final = struct.Struct("@llHHi")
"""``struct input_event``: ``struct timeval`` (two C longs), type, code, value."""

EVENT_SIZE: Final = _EVENT.size
"""The size of one event record on this machine (24 bytes on 64-bit, 16 on 32-bit)."""

EVIOCGRAB: Final = (1 << 30) | (4 << 16) | (ord("E") << 8) | 0x90
"""``_IOW('E', 0x90, int)``: grab (1) or release (0) an event device."""


class InputEvent(NamedTuple):
    """One ``struct input_event``."""

    sec: int
    usec: int
    type: int
    code: int
    value: int

    def pack(self) -> bytes:
        """The record as the kernel writes it."""
        return _EVENT.pack(*self)


def decode(data: bytes) -> list[InputEvent]:
    """The whole events in ``data`` (a read of an event device returns whole events)."""
    usable = len(data) - len(data) % EVENT_SIZE
    return [InputEvent(*fields) for fields in _EVENT.iter_unpack(data[:usable])]


def open_grabbed(path: str) -> int:
    """Open event device ``path`` non-blocking and grab it; its file descriptor.

    Raises :class:`OSError` if it cannot be opened, or is no event device, or another
    program holds it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, EVIOCGRAB, 1)
    except OSError:
        os.close(fd)
        raise
    return fd


def read_events(fd: int) -> list[InputEvent]:
    """The events waiting on ``fd`` (none if there are none yet)."""
    try:
        return decode(os.read(fd, EVENT_SIZE * 64))
    except BlockingIOError:
        return []


def release(fd: int) -> None:
    """Release the grab of ``fd`` (if it still holds) and close it."""
    try:
        fcntl.ioctl(fd, EVIOCGRAB, 0)
    except OSError:
        pass  # unplugged: the grab went with the device
    finally:
        os.close(fd)
