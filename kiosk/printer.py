"""The ticket printer, in layers: a transport per connection, then the printer device.

:class:`Transport`
    Moves bytes to one ESC/POS printer and reads its answers, each read bounded in
    time. One per connection kind, on python-escpos's own printer classes
    (:class:`NetworkTransport`, :class:`SerialTransport`, :class:`UsbTransport`),
    and :class:`SimulatedTransport`, which prints to the log and a file for a
    laptop or the demo. :func:`open_transport` picks one from the settings.

:class:`TicketPrinter`
    Renders a ticket into ESC/POS (all the encoding is here, done by python-escpos
    on its ``Dummy`` printer with the configured profile: code pages, sizes, native
    QR, cut) and sends it in one write; and reads the printer's condition with the
    real-time status queries ``DLE EOT 1, 2, 4`` (:meth:`TicketPrinter.check`).

Status replies are checked, never assumed: a printer that stays silent within
``status_timeout_s`` is in state ``unknown``, not "paper OK" (python-escpos's own
``paper_status`` reads silence as plenty of paper).
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from escpos.constants import QR_ECLEVEL_M
from escpos.escpos import Escpos
from escpos.exceptions import Error as EscposError
from escpos.printer import Dummy, Network, Serial, Usb
from PIL import Image, ImageDraw, ImageFont

from common.errors import PoradovnikError
from common.kiosk_settings import PrinterSettings
from kiosk.catalog import Catalog, wait_minutes
from kiosk.escpos_text import decode
from lobby.content import APPOINTMENT_MARK, ticket_marks

__all__ = [
    "CANNOT_PRINT",
    "STATUS_QUERY",
    "NetworkTransport",
    "PrintedTicket",
    "PrinterFault",
    "PrinterStatus",
    "SerialTransport",
    "SimulatedTransport",
    "TicketPrinter",
    "Transport",
    "UsbTransport",
    "open_transport",
    "parse_status",
    "wait_text",
]

log = logging.getLogger(__name__)

STATUS_QUERY: Final = b"\x10\x04\x01\x10\x04\x02\x10\x04\x04"
"""``DLE EOT 1`` (printer), ``DLE EOT 2`` (offline cause), ``DLE EOT 4`` (paper sensor)."""

CANNOT_PRINT: Final = frozenset({"paper_out", "cover_open", "offline", "error"})
"""States in which a ticket would not come out of the printer."""

PREFERRED_CODEPAGES: Final = ("CP852", "CP1125", "CP866", "CP437", "CP858")
"""Tried first for each line: Slovak and Czech (CP852), Ukrainian (CP1125 has і, ї, є,
ґ; CP866 lacks і), then Western pages."""

_CHAR_DOTS: Final = 12
"""Width of a character of font A in dots (at size 1)."""

_DEFAULT_WIDTH_DOTS: Final = 512
"""Paper width assumed when the profile does not say (80 mm paper at 180 dpi)."""


class PrinterFault(PoradovnikError):
    """The printer could not be reached or refused the ticket."""


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """The printer's condition: one of the protocol's part states, and the raw reply."""

    state: str
    """``ok``, ``paper_near_end``, ``paper_out``, ``cover_open``, ``offline``, ``error``
    or ``unknown``."""
    detail: str

    @property
    def can_print(self) -> bool:
        """Whether a ticket sent now would come out (``unknown`` is given the benefit)."""
        return self.state not in CANNOT_PRINT


def _valid(byte: int) -> bool:
    """Whether ``byte`` is a real-time status byte: bits 1 and 4 set, 0 and 7 clear."""
    return byte & 0x93 == 0x12


def parse_status(reply: bytes) -> PrinterStatus:
    """Read the three replies to :data:`STATUS_QUERY`; anything short or malformed is unknown."""
    detail = "DLE EOT 1,2,4: " + (reply.hex(" ") if reply else "no answer")
    if len(reply) != 3 or not all(_valid(b) for b in reply):
        return PrinterStatus("unknown", detail)
    printer, cause, paper = reply
    if cause & 0x04:
        state = "cover_open"
    elif cause & 0x20 or paper & 0x60:
        state = "paper_out"
    elif cause & 0x40:
        state = "error"
    elif printer & 0x08:
        state = "offline"
    elif paper & 0x0C:
        state = "paper_near_end"
    else:
        state = "ok"
    return PrinterStatus(state, detail)


# -- transports ------------------------------------------------------------------------


class Transport(ABC):
    """One connection to an ESC/POS printer, over a python-escpos printer object.

    It opens the connection when first needed and again after a failure.
    """

    description: str
    """Where the printer is, for messages (``network 10.0.0.9:9100``…)."""

    def __init__(self, printer: Escpos, description: str) -> None:
        self.printer = printer
        self.description = description

    def write(self, data: bytes) -> None:
        """Send ``data``; :class:`PrinterFault` if the printer cannot be reached."""
        try:
            self._open()
            self.printer._raw(data)
        except (OSError, EscposError) as exc:
            self.close()
            raise PrinterFault(f"printer on {self.description}: {exc}") from exc

    def query(self, request: bytes, size: int, timeout_s: float) -> bytes:
        """Send ``request`` and return what the printer answers within ``timeout_s``.

        At most ``size`` bytes; fewer (even none) when the printer is silent.
        Raises :class:`PrinterFault` when the connection fails.
        """
        try:
            self._open()
            self._drain()
            self.printer._raw(request)
            deadline = time.monotonic() + timeout_s
            answer = b""
            while len(answer) < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                answer += self._read(size - len(answer), remaining)
            return answer
        except PrinterFault:
            self.close()
            raise
        except (OSError, EscposError) as exc:
            self.close()
            raise PrinterFault(f"printer on {self.description}: {exc}") from exc

    def close(self) -> None:
        """Close the connection; the next write opens it again."""
        try:
            self.printer.close()
        except (OSError, EscposError):
            log.debug("closing the printer on %s failed", self.description, exc_info=True)
        self.printer._device = False

    def _open(self) -> None:
        if not self.printer._device:
            self.printer.open()

    def _drain(self) -> None:
        """Drop answers that came late to an earlier query."""
        while self._read(64, 0.001):
            pass

    @abstractmethod
    def _read(self, size: int, timeout_s: float) -> bytes:
        """Read up to ``size`` bytes, waiting at most ``timeout_s``; ``b""`` if none came."""


class NetworkTransport(Transport):
    """A printer on the network (raw TCP, usually port 9100): python-escpos's ``Network``."""

    def __init__(self, *, host: str, port: int, profile: str, timeout_s: float) -> None:
        printer = Network(host, port=port, timeout=timeout_s, profile=profile)
        super().__init__(printer, f"network {host}:{port}")
        self.timeout_s = timeout_s

    def _open(self) -> None:
        super()._open()
        self._socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _socket(self) -> socket.socket:
        device: Any = self.printer._device
        return device  # type: ignore[no-any-return]

    def _read(self, size: int, timeout_s: float) -> bytes:
        sock = self._socket()
        sock.settimeout(timeout_s)
        try:
            data = sock.recv(size)
        except TimeoutError:
            return b""
        finally:
            sock.settimeout(self.timeout_s)
        if not data:
            raise PrinterFault(f"the printer on {self.description} closed the connection")
        return data


class SerialTransport(Transport):
    """A printer on a serial port: python-escpos's ``Serial`` (pyserial)."""

    def __init__(self, *, device: Path, baudrate: int, profile: str, timeout_s: float) -> None:
        printer = Serial(str(device), baudrate=baudrate, timeout=timeout_s, profile=profile)
        super().__init__(printer, f"serial {device} at {baudrate} baud")

    def _read(self, size: int, timeout_s: float) -> bytes:
        port: Any = self.printer._device
        port.timeout = timeout_s
        data: bytes = port.read(size)
        return data


class UsbTransport(Transport):
    """A printer on USB: python-escpos's ``Usb`` (pyusb)."""

    def __init__(self, *, vendor: int, product: int, profile: str, timeout_s: float) -> None:
        printer = Usb(vendor, product, timeout=int(timeout_s * 1000), profile=profile)
        super().__init__(printer, f"USB {vendor:04x}:{product:04x}")

    def _read(self, size: int, timeout_s: float) -> bytes:
        import usb.core  # noqa: PLC0415 (pyusb is only needed for a USB printer)

        device: Any = self.printer._device
        try:
            data = device.read(self.printer.in_ep, size, timeout=max(1, int(timeout_s * 1000)))
        except usb.core.USBTimeoutError:
            return b""
        return bytes(data)


_SIMULATED_STATUS: Final = {
    "ok": b"\x16\x12\x12",
    "paper_near_end": b"\x16\x12\x1e",
    "paper_out": b"\x1e\x32\x72",
    "cover_open": b"\x1e\x16\x12",
    "offline": b"\x1e\x12\x12",
    "unknown": b"",
}
"""What a printer in each state answers to :data:`STATUS_QUERY`."""


class SimulatedTransport(Transport):
    """No printer: each ticket goes to the log as text, and to ``file`` when given.

    It answers status queries as a printer in ``state`` would, so the kiosk behaves
    as with a real one (try ``paper_out``).
    """

    def __init__(self, *, profile: str, file: Path | None, state: str = "ok") -> None:
        super().__init__(Dummy(profile=profile), "simulated printer")
        self.profile = profile
        self.file = file
        self.state = state

    def write(self, data: bytes) -> None:
        """Log the ticket as text and append it to the file."""
        text = decode(data, self.profile).render()
        log.info("simulated printer:\n%s", text)
        if self.file is not None:
            try:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                with self.file.open("a", encoding="utf-8") as out:
                    out.write(text + "\n\n")
            except OSError as exc:
                raise PrinterFault(f"simulated printer: cannot write {self.file}: {exc}") from exc

    def query(self, request: bytes, size: int, timeout_s: float) -> bytes:
        """Answer as a printer in :attr:`state` would."""
        return _SIMULATED_STATUS[self.state][:size] if request == STATUS_QUERY else b""

    def _read(self, size: int, timeout_s: float) -> bytes:
        return b""


def open_transport(settings: PrinterSettings) -> Transport:
    """The transport the ``[kiosk.printer]`` settings describe (nothing is opened yet)."""
    timeout = settings.connect_timeout_s
    profile = settings.profile
    if settings.backend == "network":
        assert settings.host is not None
        return NetworkTransport(
            host=settings.host, port=settings.port, profile=profile, timeout_s=timeout
        )
    if settings.backend == "serial":
        assert settings.serial_device is not None
        return SerialTransport(
            device=settings.serial_device,
            baudrate=settings.serial_baudrate,
            profile=profile,
            timeout_s=timeout,
        )
    if settings.backend == "usb":
        assert settings.usb_vendor_id is not None
        assert settings.usb_product_id is not None
        return UsbTransport(
            vendor=settings.usb_vendor_id,
            product=settings.usb_product_id,
            profile=profile,
            timeout_s=timeout,
        )
    return SimulatedTransport(
        profile=profile, file=settings.simulated_file, state=settings.simulated_state
    )


# -- the device ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrintedTicket:
    """What a printed ticket says."""

    ticket_id: str
    number: str
    service_name: str
    issued_at: datetime
    """In the office's time zone (printed as it is)."""
    people_ahead: int
    estimated_wait_s: int | None
    lang: str
    offline: bool = False
    """Issued from the kiosk's own block while the hub did not answer."""
    appointment_at: datetime | None = None
    """The booked slot's start (office's time zone) of a ticket issued by a check-in."""
    priority: bool = False
    """A priority ticket: its number has the discreet mark (never the reason)."""

    @property
    def mark(self) -> str:
        """The marks beside the number (:func:`lobby.content.ticket_marks`)."""
        return ticket_marks(appointment=self.appointment_at is not None, priority=self.priority)


class TicketPrinter:
    """Prints tickets on a :class:`Transport` and reports the printer's condition.

    ``transport`` is keyword-only, like gpiozero's ``pin_factory``. ``profile`` is
    the python-escpos profile; ``font`` is the TrueType font for lines no code page
    of the profile can print (they go out as pictures, never as ``?``).
    """

    def __init__(
        self,
        *,
        transport: Transport,
        profile: str,
        catalogs: dict[str, Catalog],
        font: Path,
        office: str,
        portal_url: str | None = None,
        footer: str | None = None,
        logo: Path | None = None,
        status_timeout_s: float = 0.3,
    ) -> None:
        self.transport = transport
        self.profile = profile
        self.catalogs = catalogs
        self.font = font
        self.office = office
        self.portal_url = portal_url.rstrip("/") if portal_url else None
        self.footer = footer
        self.status_timeout_s = status_timeout_s
        self._lock = threading.Lock()
        probe = Dummy(profile=profile)
        self._encoder = probe.magic.encoder
        """Shared by every ticket's rendering: it caches each code page's characters."""
        media = probe.profile.profile_data.get("media", {}).get("width", {}).get("pixels")
        self.width_dots = media if isinstance(media, int) else _DEFAULT_WIDTH_DOTS
        self.native_qr = bool(probe.profile.supports("qrCode"))
        self.logo = self._load_logo(logo) if logo is not None else None

    def _load_logo(self, path: Path) -> Image.Image:
        try:
            with Image.open(path) as picture:
                logo = picture.convert("L")
        except (OSError, ValueError) as exc:
            raise PoradovnikError(f"[kiosk.printer] logo: cannot read {path}: {exc}") from None
        if logo.width > self.width_dots:
            height = round(logo.height * self.width_dots / logo.width)
            logo = logo.resize((self.width_dots, height))
        return logo

    def ticket_url(self, ticket_id: str) -> str | None:
        """The portal page of a ticket, which its QR code opens (``<portal>/t/<id>``)."""
        return f"{self.portal_url}/t/{ticket_id}" if self.portal_url else None

    # -- rendering -------------------------------------------------------------------

    def render(self, ticket: PrintedTicket) -> bytes:
        """The ESC/POS bytes of ``ticket``, ending with a cut."""
        out = Dummy(profile=self.profile, magic_encode_args={"encoder": self._encoder})
        texts = self.catalogs[ticket.lang]
        out.hw("INIT")
        out.set(align="center")
        if self.logo is not None:
            with _quiet():
                out.image(self.logo)
        out.set(bold=True)
        self._line(out, self.office)
        out.set(bold=False)
        self._line(out, texts.text("ticket.number"))
        mark = ticket.mark
        size = len(ticket.number) + (len(mark) + 1 if mark else 0)
        scale = max(1, min(8, self.width_dots // (_CHAR_DOTS * size)))
        out.set(custom_size=True, width=scale, height=scale, bold=True)
        if mark:
            # The marks beside the number, smaller, on the same line (ESC/POS sizes are per
            # character; the line takes the tallest).
            self._line(out, ticket.number, scale, end="")
            small = scale // 3 + 1
            out.set(custom_size=True, width=small, height=small, bold=True)
            self._line(out, f" {mark}", small)
        else:
            self._line(out, ticket.number, scale)
        out.set(normal_textsize=True, bold=False)
        out.set(double_height=True)
        self._line(out, ticket.service_name, 2)
        if ticket.appointment_at is not None:
            at = f"{ticket.appointment_at:%H:%M}"
            self._line(out, f"{APPOINTMENT_MARK} {texts.text('ticket.appointment', time=at)}", 2)
        out.set(normal_textsize=True)
        self._line(out, texts.text("ticket.issued", time=f"{ticket.issued_at:%d.%m.%Y %H:%M}"))
        self._line(out, texts.text("ticket.ahead", ahead=ticket.people_ahead))
        self._line(out, wait_text(texts, "ticket", ticket.people_ahead, ticket.estimated_wait_s))
        if ticket.offline:
            out.set(font="b")
            self._line(out, texts.text("ticket.offline"))
            out.set(font="a")
        url = self.ticket_url(ticket.ticket_id)
        if url is not None:
            out.ln()
            with _quiet():
                out.qr(url, ec=QR_ECLEVEL_M, size=6, native=self.native_qr)
            self._line(out, texts.text("ticket.qr"))
        out.ln()
        self._line(out, texts.text("ticket.footer"))
        if self.footer:
            self._line(out, self.footer)
        out.cut()
        data: bytes = out.output
        return data

    def _line(self, out: Dummy, text: str, scale: int = 1, *, end: str = "\n") -> None:
        """One line of text in a code page of the profile that has all its characters.

        python-escpos's encoder says which pages can; the line goes in the first of
        the page already selected, :data:`PREFERRED_CODEPAGES`, then the profile's
        others. With none, the line is printed as a picture. ``end=""`` leaves the
        line open for more text (in another size, say).
        """
        encoder = out.magic.encoder
        pages = [p for p in encoder.codepages if p != "Unknown"]
        order = [out.magic.encoding, *PREFERRED_CODEPAGES, *pages]
        for page in dict.fromkeys(p for p in order if p in pages):
            if all(encoder.can_encode(page, char) for char in text):
                out.magic.write_with_encoding(page, text + end)
                return
        with _quiet():
            out.image(self._picture(text, scale))

    def _picture(self, text: str, scale: int) -> Image.Image:
        size = 24 * scale
        while True:
            font = ImageFont.truetype(str(self.font), size)
            left, top, right, bottom = font.getbbox(text)
            if right - left <= self.width_dots or size <= 8:
                break
            size -= 2
        width = min(self.width_dots, int(right - left) + 4)
        picture = Image.new("1", (width, int(bottom - top) + 8), 1)
        ImageDraw.Draw(picture).text((2 - left, 4 - top), text, font=font, fill=0)
        return picture

    # -- the printer -----------------------------------------------------------------

    def print(self, ticket: PrintedTicket) -> None:
        """Print ``ticket``; :class:`PrinterFault` when the printer cannot be reached."""
        data = self.render(ticket)
        with self._lock:
            self.transport.write(data)

    def check(self) -> PrinterStatus:
        """Ask the printer for its condition, waiting at most ``status_timeout_s``."""
        with self._lock:
            try:
                reply = self.transport.query(STATUS_QUERY, 3, self.status_timeout_s)
            except PrinterFault as fault:
                return PrinterStatus("offline", str(fault)[:200])
        return parse_status(reply)

    def close(self) -> None:
        """Close the printer's connection."""
        with self._lock:
            self.transport.close()


def _quiet() -> contextlib.AbstractContextManager[object]:
    """Keep python-escpos's ``print`` about a profile without a paper width off stdout."""
    return contextlib.redirect_stdout(io.StringIO())


def wait_text(texts: Catalog, where: str, ahead: int, wait_s: int | None) -> str:
    """The estimated wait as ``where`` (``ticket`` or ``confirm``) tells it."""
    if wait_s is None:
        return texts.text(f"{where}.wait_unknown")
    if wait_s == 0 or ahead == 0:
        return texts.text(f"{where}.wait_soon")
    return texts.text(f"{where}.wait", minutes=wait_minutes(wait_s))
