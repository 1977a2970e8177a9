"""``[display]``: the settings of a lobby display: its screen, its sound and its LED boards.

It lives in :mod:`common` with the other sections, because :class:`~common.settings.Settings`
holds every role's section (the command line checks any device's file); like them, it
imports only pydantic, so no role's hardware libraries come with it.

The screen and sound keys sit directly in ``[display]`` (so that each can be set from
the environment, ``PORADOVNIK_DISPLAY__VOLUME=60``); the LED boards on the RS-485 bus
are listed as ``[[display.boards]]`` tables.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from common.section import Section

__all__ = ["BoardSettings", "DisplaySettings", "QuietHours", "parse_quiet_hours"]

VideoDriver = Literal["auto", "kmsdrm", "x11", "wayland", "dummy"]
"""How the screen is opened: ``auto`` picks KMS/DRM without a desktop, a window with one."""

SoundBackend = Literal["pygame", "aplay", "wav", "none"]
"""Where announcements are played: SDL's audio, ALSA's ``aplay``, WAV files, or nowhere."""

BoardsBackend = Literal["none", "serial", "simulated"]
"""How the LED boards are reached: not at all, over a serial port, or emulated in-process."""

QuietHours = tuple[tuple[time, time], ...]
"""Ranges of the day, start and end in the office's time zone; an end before the start
wraps past midnight."""

_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_quiet_hours(ranges: tuple[str, ...]) -> QuietHours:
    """Read ``"HH:MM-HH:MM"`` strings as (start, end) times; raise ValueError if one is bad."""
    parsed = []
    for text in ranges:
        match = _RANGE.match(text.strip())
        if match is None:
            msg = f"{text!r} is not a range of the day such as '12:00-12:30' (24-hour HH:MM-HH:MM)"
            raise ValueError(msg)
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        parsed.append((time(h1, m1), time(h2, m2)))
    return tuple(parsed)


def _check_quiet_hours(value: tuple[str, ...]) -> tuple[str, ...]:
    parse_quiet_hours(value)
    return value


class BoardSettings(Section):
    """``[[display.boards]]``: one LED board on the RS-485 bus."""

    address: int = Field(ge=1, le=254)
    """The board's bus address (set on the board, usually with DIP switches), 1-254."""

    counter: str | None = Field(default=None, min_length=1, max_length=64)
    """The counter (its id, as on the hub) whose current ticket the board shows."""

    hall: bool = False
    """Whether this is a hall board: it shows the latest call as ``A042 3`` instead of one
    counter's ticket."""

    width: int = Field(default=8, ge=1, le=32)
    """How many characters the board can show; longer text is cut."""

    brightness: int = Field(default=10, ge=0, le=15)
    """The board's brightness, 0 (darkest) to 15, set when the display starts."""

    @model_validator(mode="after")
    def _one_purpose(self) -> Self:
        if (self.counter is None) == (not self.hall):
            msg = 'a board has either counter = "<id>" or hall = true, not both or neither'
            raise ValueError(msg)
        return self


class DisplaySettings(Section):
    """``[display]``: a lobby display: its screen, its sound and its LED boards (display only)."""

    # -- the screen ------------------------------------------------------------------

    video_driver: VideoDriver = "auto"
    """SDL video driver: ``auto`` (KMS/DRM on a Pi without a desktop, else a window),
    ``kmsdrm``, ``x11``, ``wayland``, or ``dummy`` (no screen at all)."""

    width: int = Field(default=1920, ge=320, le=7680)
    """Width of the screen (or window) in pixels; 1920 or 1280 for the usual TVs."""

    height: int = Field(default=1080, ge=240, le=4320)
    """Height of the screen (or window) in pixels; 1080 or 720 for the usual TVs."""

    fullscreen: bool = True
    """Whether to fill the whole screen; false opens a window (on a desktop)."""

    fonts_dir: Path = Path("/usr/share/fonts/truetype/dejavu")
    """Where the DejaVu fonts are (Debian package fonts-dejavu-core)."""

    logo: Path | None = None
    """The office's logo (PNG or JPEG) shown in the header; none shows only the name."""

    ticker: str = Field(default="", max_length=500)
    """A line of text scrolling along the bottom of the screen; empty for none."""

    history: int = Field(default=5, ge=0, le=12)
    """How many of the previous calls are listed beside the current one."""

    highlight_s: float = Field(default=4.0, ge=0, le=60)
    """How long a new call blinks, in seconds."""

    min_show_s: float = Field(default=6.0, ge=0, le=60)
    """The least time each call stays the current one when several come at once, in
    seconds, so that none flashes past; the others wait their turn."""

    catch_up_s: float = Field(default=60.0, ge=0, le=3600)
    """A call the display hears late (after an outage, or at its start) is announced
    only if it is younger than this, in seconds; an older one joins the previous calls
    silently. Ages come from the broker, not the display's clock."""

    language_cycle_s: float = Field(default=10.0, ge=0, le=600)
    """Seconds between switches of the screen's language through ``[site] languages``;
    0 keeps the first language."""

    # -- the sound -------------------------------------------------------------------

    sound: SoundBackend = "pygame"
    """Where announcements play: ``pygame`` (SDL audio: HDMI or the jack), ``aplay``
    (ALSA), ``wav`` (WAV files in ``sound_dir``, for tests and the simulated office) or
    ``none``."""

    sound_dir: Path | None = None
    """Where the ``wav`` sound writes its files; default: ``announcements`` in
    ``[data] dir``."""

    alsa_device: str | None = Field(default=None, max_length=100)
    """ALSA device for ``aplay`` (its ``-D``), such as ``hdmi:CARD=vc4hdmi0``; none for
    the default."""

    volume: int = Field(default=80, ge=0, le=100)
    """Loudness of the chime and the speech, in percent."""

    chime: bool = True
    """Whether a chime sounds before each announcement."""

    speech: bool = True
    """Whether calls are spoken (with espeak-ng, or recorded words)."""

    speech_rate: int = Field(default=140, ge=80, le=300)
    """How fast espeak-ng speaks, in words per minute."""

    words_dir: Path | None = None
    """Recorded words, one folder per language (``sk/ticket.wav``, ``sk/42.wav``…);
    a missing word is spoken by espeak-ng. None speaks everything with espeak-ng."""

    quiet_hours: Annotated[tuple[str, ...], AfterValidator(_check_quiet_hours)] = ()
    """Ranges of the day with ``quiet_volume`` instead of ``volume``, such as
    ``"12:00-12:30"``, in the office's time zone."""

    quiet_volume: int = Field(default=0, ge=0, le=100)
    """Loudness in the quiet hours, in percent; 0 is silent (the screen still blinks)."""

    # -- the LED boards --------------------------------------------------------------

    boards_backend: BoardsBackend = "none"
    """How the LED boards are reached: ``none``, ``serial`` (an RS-485 adapter at
    ``boards_port``), or ``simulated`` (boards emulated in this process, for a laptop)."""

    boards_port: str = Field(default="/dev/ttyUSB0", min_length=1)
    """The serial port of the RS-485 adapter, or a pyserial URL."""

    boards_baudrate: int = Field(default=9600, ge=1200, le=921600)
    """Bits per second on the bus."""

    boards_framing: Literal["8N1", "7E1", "7E2"] = "8N1"
    """Each byte's data bits, parity and stop bits: ``8N1``, or ``7E1``/``7E2`` (7 data
    bits, even parity, 1 or 2 stop bits) for signs set up that way."""

    boards_rs485: Literal["auto", "on", "off"] = "auto"
    """The kernel's RS-485 mode, which switches the transceiver's direction: ``auto``
    uses it where the port supports it, ``on`` requires it, ``off`` never uses it
    (adapters that switch by themselves)."""

    boards_protocol: str = Field(default="poradovnik", min_length=1)
    """The boards' frame protocol: ``poradovnik``, ``alpha`` or ``alpha-checksum`` (the
    Alpha Sign Communications Protocol); see docs/display.md."""

    boards_timeout_s: float = Field(default=0.2, gt=0, le=5)
    """How long a board may take to acknowledge a frame, in seconds."""

    boards_retries: int = Field(default=2, ge=0, le=10)
    """How many times a frame is sent again before the board counts as offline."""

    boards_blink_s: float = Field(default=5.0, ge=0, le=60)
    """How long a counter's board blinks a newly called number, in seconds."""

    boards_probe_s: float = Field(default=15.0, gt=0, le=600)
    """How often an offline board is tried again, in seconds."""

    boards: tuple[BoardSettings, ...] = ()
    """The LED boards on the bus, each a ``[[display.boards]]`` table."""

    @model_validator(mode="after")
    def _unique_addresses(self) -> Self:
        addresses = [board.address for board in self.boards]
        twice = sorted({a for a in addresses if addresses.count(a) > 1})
        if twice:
            msg = f"two boards share the bus address {', '.join(map(str, twice))}"
            raise ValueError(msg)
        return self
