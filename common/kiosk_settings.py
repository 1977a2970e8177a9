"""``[kiosk]``: the settings of a ticket kiosk: its screen, its printer and offline issuing.

It lives in :mod:`common` with the other sections, because :class:`~common.settings.Settings`
holds every role's section (the command line checks any device's file); like them, it
imports only pydantic, so no role's hardware libraries come with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from common.section import Section

__all__ = ["KioskSettings", "PrinterSettings"]

PrinterBackend = Literal["usb", "serial", "network", "simulated"]
"""How the ticket printer is reached."""

ScannerBackend = Literal["none", "evdev", "simulated"]
"""How booking QR codes are scanned."""

PrinterState = Literal["ok", "paper_near_end", "paper_out", "cover_open", "offline", "unknown"]
"""A printer condition, as the printer's real-time status reports it."""


class PrinterSettings(Section):
    """``[kiosk.printer]``: the ESC/POS ticket printer and how to reach it."""

    backend: PrinterBackend = "simulated"
    """How the printer is connected: "usb", "serial", "network", or "simulated" (no printer:
    each ticket goes to the log and to simulated_file, for a laptop or a demo)."""

    profile: str = "TM-T20II"
    """The python-escpos printer profile: which code pages, QR support and paper width the
    printer has (e.g. "TM-T20II", "TM-T88V", "default")."""

    usb_vendor_id: int | None = Field(default=None, ge=0, le=0xFFFF)
    """USB vendor id of the printer (e.g. 0x04b8 for Epson); backend "usb" only."""

    usb_product_id: int | None = Field(default=None, ge=0, le=0xFFFF)
    """USB product id of the printer (see lsusb); backend "usb" only."""

    serial_device: Path | None = None
    """The serial port, e.g. /dev/ttyUSB0 or /dev/serial0; backend "serial" only."""

    serial_baudrate: int = Field(default=38400, ge=1200, le=921600)
    """Serial speed in baud, as set on the printer (its DIP switches or setup)."""

    host: str | None = None
    """Host name or address of a network printer; backend "network" only."""

    port: int = Field(default=9100, ge=1, le=65535)
    """TCP port of a network printer (raw printing, usually 9100)."""

    connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    """How long opening the printer's connection and writing a ticket may take."""

    status_timeout_s: float = Field(default=0.3, gt=0, le=5)
    """How long the printer has to answer a status query; silence means "unknown"."""

    status_interval_s: float = Field(default=10.0, ge=1, le=3600)
    """How often the printer's paper and cover are checked between tickets."""

    simulated_file: Path | None = None
    """Where the simulated printer appends each ticket as text (an absolute path); none means
    only the log."""

    simulated_state: PrinterState = "ok"
    """What the simulated printer reports when asked for its status (to try the kiosk's
    behaviour with no paper, say)."""

    logo: Path | None = None
    """A picture (PNG, an absolute path) printed at the top of each ticket, scaled down to the
    paper's width; none for no logo."""

    @model_validator(mode="after")
    def _backend_needs_its_address(self) -> Self:
        needed = {
            "usb": ("usb_vendor_id", "usb_product_id"),
            "serial": ("serial_device",),
            "network": ("host",),
            "simulated": (),
        }[self.backend]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            keys = " and ".join(missing)
            msg = f'backend "{self.backend}" needs {keys} in [kiosk.printer]'
            raise ValueError(msg)
        return self


class KioskSettings(Section):
    """``[kiosk]``: a ticket kiosk: its screen, its printer and offline issuing (kiosk only)."""

    printer: PrinterSettings = PrinterSettings()
    """The ticket printer."""

    width: int = Field(default=0, ge=0, le=8192)
    """Screen width in pixels; 0 means the screen's own (800×480 on the Pi's 7" touch screen,
    1080×1920 on a portrait screen)."""

    height: int = Field(default=0, ge=0, le=8192)
    """Screen height in pixels; 0 means the screen's own."""

    fullscreen: bool = True
    """Fill the whole screen without a window frame (false for a window on a laptop)."""

    services: tuple[str, ...] = ()
    """Codes of the services this kiosk offers, in button order; empty means every service
    the hub publishes, by ticket letter."""

    portal_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    """Base address of the citizen portal, e.g. "https://poradovnik.kosice.sk"; each ticket's
    QR code opens <portal_url>/t/<ticket id>. None prints no QR code."""

    footer: str | None = Field(default=None, max_length=120)
    """An extra line printed at the bottom of each ticket (the office's hours, say)."""

    hub_timeout_s: float = Field(default=1.5, gt=0, le=30)
    """How long a tap waits for the hub's number before the kiosk issues one of its own
    reserved numbers instead."""

    block_size: int = Field(default=20, ge=1, le=100)
    """How many numbers per service the kiosk keeps reserved for issuing while the hub does
    not answer; it asks for more when fewer than half are left."""

    confirm_timeout_s: float = Field(default=12.0, ge=2, le=120)
    """How long the confirmation with the number stays before the start screen returns."""

    on_printer_fault: Literal["show_number", "stop"] = "show_number"
    """When the printer cannot print (no paper, cover open, offline): "show_number" still
    issues and shows the number on the screen; "stop" issues nothing and sends citizens to
    the counter."""

    speech: bool = False
    """Speak the number and the counter's instructions aloud (espeak-ng) after each tap,
    for citizens who cannot read the screen."""

    speech_device: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_:=,.-]{1,80}$")
    """The ALSA device the kiosk speaks through (speech and the accessible mode's spoken
    guidance), e.g. "plughw:CARD=Headphones" for the Raspberry Pi's headphone jack or
    "plughw:CARD=Device" for a USB loudspeaker (`aplay -L` lists them; needs alsa-utils).
    None: espeak-ng's own sound output (the system's default)."""

    accessibility: bool = True
    """Show the accessibility button on every screen: large text and high contrast, every
    control within reach from a wheelchair, spoken guidance with touch-then-confirm."""

    reach_top: float | None = Field(default=None, ge=0.0, le=0.8)
    """Where the accessible mode's reach zone begins, as a fraction of the screen's height
    from its top: every control of the accessible mode lies below it. None: 0.3 on a
    portrait screen (its lower 70 %), 0.2 on a landscape one (its lower 80 %)."""

    screen_height_mm: float | None = Field(default=None, gt=20.0, le=2000.0)
    """How tall the screen's picture is, in millimetres, as it is mounted (its active area's
    vertical side: 85.92 on the Raspberry Pi 7" Touch Display in landscape, 476.6 on a 21.5"
    16:9 screen in portrait): the accessible mode draws its text from it so that a capital
    letter is large enough at viewing_distance_mm (EN 301 549 5.1.4). None: pixels as tall
    as the 7" Touch Display's (0.179 mm), right for it and larger than needed on a screen
    with larger pixels."""

    viewing_distance_mm: float = Field(default=500.0, ge=200.0, le=1500.0)
    """How far a citizen's eyes are from the screen, standing or in a wheelchair, in
    millimetres: the accessible mode's capital letters subtend at least 0.7 degrees from
    there (EN 301 549 5.1.4), 6.1 mm at the default 500 mm."""

    font_dir: Path = Path("/usr/share/fonts/truetype/dejavu")
    """Where the DejaVu fonts are (Debian package fonts-dejavu-core): they draw Slovak,
    Czech and Ukrainian."""

    simulate_citizens_s: float | None = Field(default=None, gt=0.0)
    """For demos and showrooms: simulated citizens tap a random service on the start
    screen, on average this many seconds apart (none: only real fingers)."""

    appointments: bool = True
    """Offer check-in for booked appointments: an "I have an appointment" button for typing the
    booking's code, and the QR scanner if there is one (false: walk-in tickets only)."""

    priority: bool = True
    """Offer priority tickets: an "I need priority" button leading to the reasons (disability,
    pregnancy, age, with a child), each with its pictogram, then to the services whose
    admin allows priority tickets (false: no priority tickets from this kiosk)."""

    scanner: ScannerBackend = "none"
    """The QR scanner for bookings' codes: "none", "evdev" (a USB 2D barcode scanner that types
    like a keyboard, read through evdev and grabbed so its keys reach nothing else), or
    "simulated" (each line written to the FIFO scanner_device is a scan, for a laptop or a
    demo)."""

    scanner_device: Path | None = None
    """The scanner's event device for "evdev", e.g. /dev/input/by-id/usb-…-event-kbd (the user
    in group input); the FIFO for "simulated" (none: kiosk-scanner in [data] dir)."""

    @model_validator(mode="after")
    def _evdev_needs_its_device(self) -> Self:
        if self.scanner == "evdev" and self.scanner_device is None:
            raise ValueError('scanner "evdev" needs scanner_device in [kiosk]')
        return self
