"""The ``poradovnik`` LED board protocol: short ASCII frames with an XOR checksum.

A command, from the display to a board::

    STX  A1 A2  C  payload…  K1 K2  ETX
    0x02 address cmd text     check 0x03

- ``A1 A2``: the board's address, 1-254, as two uppercase hex digits (``03``);
- ``C``: ``S`` show the text, ``B`` show it blinking, ``X`` clear, ``L`` brightness;
- payload: for ``S`` and ``B`` the text, 0-32 printable ASCII characters (0x20-0x7E);
  for ``L`` one hex digit, 0-F; nothing for ``X``;
- ``K1 K2``: the XOR of every byte from ``A1`` to the payload's last, as two hex digits.

The board answers with a frame of the same shape: its address, ``A`` (acknowledged)
or ``N`` (refused: a bad checksum or command), no payload, and the checksum. Every
byte between STX and ETX is printable, so a receiver finds the next frame by its STX
after any noise.
"""

from __future__ import annotations

from functools import reduce
from typing import ClassVar

from display.boards.protocols import (
    BoardProtocol,
    Command,
    CommandKind,
    FrameError,
    Port,
)

STX = 0x02
ETX = 0x03

_CODES: dict[CommandKind, str] = {"show": "S", "blink": "B", "clear": "X", "brightness": "L"}
_KINDS = {code: kind for kind, code in _CODES.items()}
_ACK, _NAK = "A", "N"
_MAX_FRAME = 1 + 2 + 1 + 32 + 2 + 1


def checksum(body: bytes) -> str:
    """The XOR of ``body``'s bytes as two uppercase hex digits."""
    return f"{reduce(lambda a, b: a ^ b, body, 0):02X}"


def _printable(text: str) -> bytes:
    return text.encode("ascii", "replace").translate(
        bytes(b if 0x20 <= b <= 0x7E else ord("?") for b in range(256))
    )


class PoradovnikProtocol(BoardProtocol):
    """The frames described in this module's documentation and in docs/display.md."""

    name: ClassVar[str] = "poradovnik"

    def _frame(self, address: int, code: str, payload: bytes = b"") -> bytes:
        if not 1 <= address <= 254:
            raise ValueError(f"board address {address} is not 1-254")
        body = f"{address:02X}{code}".encode() + payload
        return bytes([STX]) + body + checksum(body).encode() + bytes([ETX])

    def _parse(self, frame: bytes) -> tuple[int, str, bytes]:
        start = frame.rfind(bytes([STX]))
        if start < 0 or not frame.endswith(bytes([ETX])) or len(frame) - start < 7:
            raise FrameError(f"not a whole frame: {frame!r}")
        body, check = frame[start + 1 : -3], frame[-3:-1]
        try:
            address: int | None = int(body[:2], 16)
        except ValueError:
            address = None
        if checksum(body).encode() != check:
            message = f"bad checksum {check!r} of {frame!r}, expected {checksum(body)}"
            raise FrameError(message, address)
        if address is None:
            raise FrameError(f"bad address in {frame!r}")
        return address, chr(body[2]), body[3:]

    def encode_command(self, address: int, command: Command) -> bytes:
        """The command frame (text cut to 32 characters, non-ASCII shown as ``?``)."""
        code = _CODES[command.kind]
        if command.kind in ("show", "blink"):
            return self._frame(address, code, _printable(command.text[: self.max_text]))
        if command.kind == "brightness":
            if not 0 <= command.level <= 15:
                raise ValueError(f"brightness {command.level} is not 0-15")
            return self._frame(address, code, f"{command.level:X}".encode())
        return self._frame(address, code)

    def parse_command(self, frame: bytes) -> tuple[int, Command]:
        """Read a command frame, as a board does."""
        address, code, payload = self._parse(frame)
        kind = _KINDS.get(code)
        if kind is None:
            raise FrameError(f"unknown command {code!r} in {frame!r}", address)
        if kind == "brightness":
            try:
                return address, Command(kind, level=int(payload, 16))
            except ValueError:
                raise FrameError(f"bad brightness {payload!r}", address) from None
        if kind == "clear" and payload:
            raise FrameError(f"clear carries no text, got {payload!r}", address)
        return address, Command(kind, text=payload.decode("ascii"))

    def encode_reply(self, address: int, *, ok: bool) -> bytes:
        """The board's ``A`` (acknowledged) or ``N`` (refused) frame."""
        return self._frame(address, _ACK if ok else _NAK)

    def parse_reply(self, frame: bytes) -> tuple[int, bool]:
        """Read a board's reply."""
        address, code, payload = self._parse(frame)
        if code not in (_ACK, _NAK) or payload:
            raise FrameError(f"not a reply: {frame!r}")
        return address, code == _ACK

    def read_frame(self, port: Port) -> bytes:
        """Read up to the next ETX (or the port's timeout)."""
        data = port.read_until(bytes([ETX]), _MAX_FRAME * 2)
        return data if data.endswith(bytes([ETX])) else b""
