"""Read ESC/POS bytes back as what a printer would print: lines of text, QR codes, cuts.

The simulated printer logs each ticket through it, and it is how the tests check
what the real transports carried. It understands the commands the kiosk sends
(python-escpos's text, style, code page, image, QR and cut commands) and decodes
text with Python's own codecs for the code page each ``ESC t`` selected in the
printer's profile, independently of python-escpos's encoder. Anything else is an
error, so a stray byte cannot pass unnoticed.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from escpos.capabilities import get_profile

__all__ = ["Decoded", "Line", "decode"]

_ESC, _GS, _DLE = 0x1B, 0x1D, 0x10

_ESC_ARGS = {
    ord(c): n
    for c, n in {
        "@": 0,
        "a": 1,
        "E": 1,
        "!": 1,
        "-": 1,
        "M": 1,
        "t": 1,
        "d": 1,
        "2": 0,
        "3": 1,
        "G": 1,
        "{": 1,
    }.items()
}
_GS_ARGS = {ord("!"): 1, ord("B"): 1, ord("b"): 1}


@dataclass
class Line:
    """One printed line: its text, the code pages it used, and its character size."""

    text: str = ""
    codepages: set[str] = field(default_factory=set)
    size: int = 0
    """The last ``GS !`` size byte in effect (0 is normal, 0x77 is 8×8)."""
    bold: bool = False


@dataclass
class Decoded:
    """What a stream of ESC/POS bytes prints."""

    lines: list[Line] = field(default_factory=list)
    qr_codes: list[str] = field(default_factory=list)
    """The data of each native QR code (``GS ( k``) printed."""
    images: list[tuple[int, int]] = field(default_factory=list)
    """Width and height in dots of each raster image (``GS v 0``)."""
    cuts: int = 0
    status_queries: list[int] = field(default_factory=list)
    """The ``n`` of each real-time status query (``DLE EOT n``)."""

    @property
    def texts(self) -> list[str]:
        """The text of every non-empty line."""
        return [line.text for line in self.lines if line.text.strip()]

    def render(self) -> str:
        """The ticket as plain text, for a log or a file."""
        out = [line.text for line in self.lines]
        out += [f"[QR {data}]" for data in self.qr_codes]
        out += [f"[image {w}×{h}]" for w, h in self.images]
        out += ["--- cut ---"] * self.cuts
        return "\n".join(out)


class _Reader:
    def __init__(self, data: bytes, profile: str) -> None:
        self.data = data
        self.pos = 0
        self.pages = get_profile(profile).codePages
        self.page = "CP437"
        self.out = Decoded()
        self.line = Line()
        self.size = 0
        self.bold = False

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"ESC/POS command cut short at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def newline(self) -> None:
        self.out.lines.append(self.line)
        self.line = Line(size=self.size, bold=self.bold)

    def text(self, byte: int) -> None:
        char = codecs.decode(bytes([byte]), self.page.lower()) if byte >= 0x80 else chr(byte)
        if byte >= 0x80:
            self.line.codepages.add(self.page)
        self.line.text += char
        self.line.size = max(self.line.size, self.size)
        self.line.bold = self.line.bold or self.bold

    def esc(self) -> None:
        command = self.take(1)[0]
        if command not in _ESC_ARGS:
            raise ValueError(f"unexpected ESC {command:#04x} at byte {self.pos - 1}")
        args = self.take(_ESC_ARGS[command])
        if command == ord("t"):
            page = self.pages.get(str(args[0]), "Unknown")
            self.page = page
        elif command == ord("!"):
            self.size = 0
        elif command == ord("E"):
            self.bold = bool(args[0])
        elif command == ord("d"):
            for _ in range(args[0]):
                self.newline()
        elif command == ord("@"):
            self.page, self.size, self.bold = "CP437", 0, False

    def gs(self) -> None:
        command = self.take(1)[0]
        if command in _GS_ARGS:
            args = self.take(_GS_ARGS[command])
            if command == ord("!"):
                self.size = args[0]
        elif command == ord("V"):
            mode = self.take(1)[0]
            if mode >= 65:
                self.take(1)
            self.out.cuts += 1
        elif command == ord("("):
            kind = self.take(1)
            low, high = self.take(2)
            body = self.take(low + 256 * high)
            if kind == b"k" and body[:2] == b"1P":
                self.out.qr_codes.append(body[3:].decode("utf-8"))
        elif command == ord("v"):
            _function, _mode, xl, xh, yl, yh = self.take(6)
            width, height = xl + 256 * xh, yl + 256 * yh
            self.take(width * height)
            self.out.images.append((width * 8, height))
        else:
            raise ValueError(f"unexpected GS {command:#04x} at byte {self.pos - 1}")

    def run(self) -> Decoded:
        while self.pos < len(self.data):
            byte = self.take(1)[0]
            if byte == _ESC:
                self.esc()
            elif byte == _GS:
                self.gs()
            elif byte == _DLE:
                eot, n = self.take(2)
                if eot != 0x04:
                    raise ValueError(f"unexpected DLE {eot:#04x} at byte {self.pos - 2}")
                self.out.status_queries.append(n)
            elif byte == 0x0A:
                self.newline()
            elif byte >= 0x20:
                self.text(byte)
            else:
                raise ValueError(f"unexpected control byte {byte:#04x} at byte {self.pos - 1}")
        if self.line.text:
            self.newline()
        return self.out


def decode(data: bytes, profile: str = "default") -> Decoded:
    """Decode ``data`` as a printer with python-escpos profile ``profile`` would print it.

    Raises :class:`ValueError` at a command it does not know or one cut short.
    """
    return _Reader(data, profile).run()
