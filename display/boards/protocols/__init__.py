"""LED board protocols, one module each, found by name.

A protocol is a subclass of :class:`BoardProtocol` with a ``name``, defined in a module
of this package: every module here is imported by :func:`protocol`, so another board's
protocol needs only one new file. The frames of the ``poradovnik`` and ``alpha``
protocols are described in docs/display.md.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from common.errors import PoradovnikError

__all__ = [
    "BoardProtocol",
    "Command",
    "CommandKind",
    "FrameError",
    "Port",
    "protocol",
    "protocol_names",
]

CommandKind = Literal["show", "blink", "clear", "brightness"]
"""What a board is told: show text, show it blinking, go dark, set its brightness."""


@dataclass(frozen=True, slots=True)
class Command:
    """One command for one board."""

    kind: CommandKind
    text: str = ""
    """The text of ``show`` and ``blink``."""
    level: int = 0
    """The brightness of ``brightness``, 0-15."""


class FrameError(ValueError):
    """A frame that cannot be used: cut short, bad checksum, unknown command.

    ``address`` is the address the frame names, when it could be read: a board refuses
    a bad frame meant for it, and ignores the rest.
    """

    def __init__(self, message: str, address: int | None = None) -> None:
        super().__init__(message)
        self.address = address


class Port(Protocol):
    """The part of a pyserial port the protocols use (a serial port or the simulated bus)."""

    def write(self, data: bytes, /) -> int | None:
        """Send bytes."""

    def flush(self) -> None:
        """Wait until everything written has been sent."""

    def read_until(self, expected: bytes = ..., size: int | None = ...) -> bytes:
        """Read up to and including ``expected``, at most ``size`` bytes, or until timeout."""

    def reset_input_buffer(self) -> None:
        """Drop what was received and not read."""


class BoardProtocol(ABC):
    """How commands and acknowledgements look on the wire, for one kind of board.

    The display's side encodes commands and parses replies; the board's side (the
    emulated boards) parses commands and encodes replies. Boards of a protocol without
    :attr:`acknowledges` never answer: their commands are written and not waited for.
    """

    name: ClassVar[str]
    """The name ``[display] boards_protocol`` chooses it by."""

    max_text: ClassVar[int] = 32
    """The longest text a frame carries."""

    acknowledges: ClassVar[bool] = True
    """Whether a board answers each command with :meth:`encode_reply`."""

    @abstractmethod
    def encode_command(self, address: int, command: Command) -> bytes:
        """The frame telling the board at ``address`` to do ``command``.

        ``b""`` for a command the protocol has no frame for (it is then not sent).
        """

    @abstractmethod
    def parse_command(self, frame: bytes) -> tuple[int, Command]:
        """Read a command frame: (address, command); raise :class:`FrameError` if bad."""

    def encode_reply(self, address: int, *, ok: bool) -> bytes:
        """The board's acknowledgement (``ok``) or refusal of a frame.

        Only for a protocol that :attr:`acknowledges`.
        """
        raise NotImplementedError(f"{self.name} boards do not answer")

    def parse_reply(self, frame: bytes) -> tuple[int, bool]:
        """Read a reply frame: (address, acknowledged); raise :class:`FrameError` if bad.

        Only for a protocol that :attr:`acknowledges`.
        """
        raise NotImplementedError(f"{self.name} boards do not answer")

    @abstractmethod
    def read_frame(self, port: Port) -> bytes:
        """Read one frame from ``port``; ``b""`` when none came within its timeout."""


def _discover() -> dict[str, type[BoardProtocol]]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    found: dict[str, type[BoardProtocol]] = {}
    pending: list[type[BoardProtocol]] = list(BoardProtocol.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if getattr(cls, "name", None):
            found[cls.name] = cls
    return found


def protocol_names() -> list[str]:
    """The names of every protocol there is."""
    return sorted(_discover())


def protocol(name: str) -> BoardProtocol:
    """The protocol called ``name``; raises :class:`PoradovnikError` if there is none."""
    known = _discover()
    if name not in known:
        names = ", ".join(sorted(known))
        msg = f"[display] boards_protocol: no LED board protocol {name!r}; known: {names}"
        raise PoradovnikError(msg)
    return known[name]()
