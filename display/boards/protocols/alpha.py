"""The Alpha Sign Communications Protocol (Adaptive Micro Systems / Alpha American).

Many commercial LED message signs (Alpha, BetaBrite and compatible boards) take it
over RS-232 or RS-485. A packet, from the public specification::

    NUL×5  SOH  T  A1 A2  STX  A  L  ESC P M  text…  [ETX K1 K2 K3 K4]  EOT
    sync   0x01 type addr 0x02 cmd file mode          checksum          0x04

- ``NUL×5``: five 0x00 bytes, so a sign can find the baud rate;
- ``SOH``: start of header; ``T`` the type code, ``Z`` (all sign types);
- ``A1 A2``: the sign's address, two uppercase hex digits (``01``-``FE``; ``00`` is every
  sign on the line, never used here);
- ``STX``: start of text; ``A`` the command code *Write TEXT file*, ``L`` the file label
  ``A`` (the file a sign shows out of the box);
- the mode field: ``ESC`` (0x1B), the display position ``0`` (fill the display) and the
  mode code ``b`` (hold: the text stands still) or ``c`` (flash);
- the text, printable ASCII only (0x20-0x7E): a control byte would be read as a
  command, so every other character is sent as ``?``;
- the checksum variant (``alpha-checksum``): ``ETX`` (0x03), then the 16-bit sum of every
  byte from ``STX`` to ``ETX`` inclusive as four uppercase hex digits; a sign drops a
  packet whose sum does not match;
- ``EOT``: end of transmission.

Signs do not answer a write, so the display cannot tell a silent sign from a working
one (:attr:`AlphaProtocol.acknowledges` is false); and brightness is the sign's own
setting, so a brightness command sends nothing. *Clear* writes the file empty.
"""

from __future__ import annotations

from typing import ClassVar

from display.boards.protocols import BoardProtocol, Command, CommandKind, FrameError, Port

NUL, SOH, STX, ETX, EOT, ESC = 0x00, 0x01, 0x02, 0x03, 0x04, 0x1B
SYNC = bytes(5)
"""Five NULs before every packet."""
TYPE_ALL = b"Z"
"""Type code: every type of sign."""
WRITE_TEXT = b"A"
"""Command code: write a TEXT file."""
FILE_LABEL = b"A"
"""The TEXT file written: ``A``, the one a sign runs out of the box."""
FILL = b"0"
"""Display position: fill the whole display."""
HOLD, FLASH = b"b", b"c"
"""Mode codes: the text stands still; the text flashes."""

_MODES: dict[bytes, CommandKind] = {HOLD: "show", FLASH: "blink"}
_MAX_PACKET = len(SYNC) + 4 + 1 + 2 + 3 + 125 + 5 + 1


def checksum(packet: bytes) -> str:
    """The sum of ``packet``'s bytes (STX to ETX, both included) as four hex digits."""
    return f"{sum(packet) & 0xFFFF:04X}"


def _printable(text: str) -> bytes:
    return bytes(ord(c) if " " <= c <= "~" else ord("?") for c in text)


class AlphaProtocol(BoardProtocol):
    """Write TEXT file packets without a checksum; see this module's documentation."""

    name: ClassVar[str] = "alpha"
    acknowledges: ClassVar[bool] = False
    max_text: ClassVar[int] = 125
    with_checksum: ClassVar[bool] = False
    """Whether packets end with ETX and the checksum before EOT."""

    def encode_command(self, address: int, command: Command) -> bytes:
        """The packet that makes the sign at ``address`` do ``command`` (``b""``: none)."""
        if not 1 <= address <= 254:
            raise ValueError(f"board address {address} is not 1-254")
        if command.kind == "brightness":
            return b""
        mode = FLASH if command.kind == "blink" else HOLD
        text = b"" if command.kind == "clear" else _printable(command.text[: self.max_text])
        body = bytes([STX]) + WRITE_TEXT + FILE_LABEL + bytes([ESC]) + FILL + mode + text
        if self.with_checksum:
            body += bytes([ETX])
            body += checksum(body).encode()
        return SYNC + bytes([SOH]) + TYPE_ALL + f"{address:02X}".encode() + body + bytes([EOT])

    def parse_command(self, packet: bytes) -> tuple[int, Command]:
        """Read a packet as a sign does; raise :class:`FrameError` if it is not one."""
        start = packet.rfind(bytes([SOH]))
        if start < 0 or not packet.endswith(bytes([EOT])):
            raise FrameError(f"not a whole packet: {packet!r}")
        header, stx, body = packet[start + 1 : -1].partition(bytes([STX]))
        if not stx or len(header) != 3:
            raise FrameError(f"bad header in {packet!r}")
        try:
            address = int(header[1:], 16)
        except ValueError:
            raise FrameError(f"bad address in {packet!r}") from None
        if header[1:] != f"{address:02X}".encode():
            raise FrameError(f"bad address in {packet!r}")
        body = self._unchecked(bytes([STX]) + body, address)
        if body[1:3] != WRITE_TEXT + FILE_LABEL or body[3:5] != bytes([ESC]) + FILL:
            raise FrameError(f"not a write of TEXT file A: {packet!r}", address)
        kind = _MODES.get(body[5:6])
        if kind is None:
            raise FrameError(f"unknown mode {body[5:6]!r} in {packet!r}", address)
        text = body[6:].decode("ascii", "replace")
        if not text:
            return address, Command("clear")
        return address, Command(kind, text=text)

    def _unchecked(self, body: bytes, address: int) -> bytes:
        """``body`` (from STX) without its checksum, which must match."""
        if not self.with_checksum:
            return body
        if len(body) < 6 or body[-5] != ETX:
            raise FrameError(f"no checksum in {body!r}", address)
        expected = checksum(body[:-4])
        if body[-4:] != expected.encode():
            raise FrameError(f"bad checksum {body[-4:]!r}, expected {expected}", address)
        return body[:-5]

    def read_frame(self, port: Port) -> bytes:
        """Read up to the next EOT (or the port's timeout)."""
        data = port.read_until(bytes([EOT]), _MAX_PACKET * 2)
        return data if data.endswith(bytes([EOT])) else b""


class AlphaChecksumProtocol(AlphaProtocol):
    """The same packets with ETX and the checksum before EOT."""

    name: ClassVar[str] = "alpha-checksum"
    with_checksum: ClassVar[bool] = True
