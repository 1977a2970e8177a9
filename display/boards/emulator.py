"""Emulated LED boards: the simulated bus of a display without hardware, and a test bench.

:class:`EmulatedBoards` is a bus of boards that check each frame as real ones do: a
frame with a bad checksum or command is refused, one for another address ignored, a
good one acknowledged and carried out (the board's :class:`BoardFace` changes). A
board can be told to stop answering, as a broken one does.

They serve either a :class:`SimulatedPort` (``[display] boards_backend =
"simulated"``: the display talks to them in its own process) or a real serial port
(:meth:`EmulatedBoards.serve`, used over a socat pty pair in the tests, and by
``python -m display.boards.emulator PORT ADDRESS…`` to stand in for a bus).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from display.boards.protocols import BoardProtocol, Command, FrameError, Port, protocol

__all__ = ["BoardFace", "EmulatedBoards", "SimulatedPort"]

log = logging.getLogger(__name__)


@dataclass
class BoardFace:
    """What an emulated board shows now, and how it has been treated."""

    address: int
    text: str = ""
    blinking: bool = False
    brightness: int = 15
    answering: bool = True
    """Whether it answers at all; ``False`` plays a board that broke or lost power."""
    frames: int = 0
    """Good frames addressed to it."""
    refused: int = 0
    """Frames for it that it refused (bad checksum or command)."""


@dataclass
class EmulatedBoards:
    """Boards at ``addresses`` on one bus, speaking ``protocol``.

    ``changed`` is set (and ``condition`` notified) after every frame a board carried
    out, so a test can wait for a board to show something.
    """

    protocol: BoardProtocol
    addresses: Iterable[int]
    faces: dict[int, BoardFace] = field(init=False)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.faces = {address: BoardFace(address) for address in self.addresses}

    def handle(self, frame: bytes) -> bytes | None:
        """Carry out one frame from the bus; the reply to send back, or ``None``.

        Boards of a protocol without acknowledgements carry out or drop frames silently.
        """
        try:
            address, command = self.protocol.parse_command(frame)
        except FrameError as exc:
            return self._refuse(exc)
        with self.condition:
            face = self.faces.get(address)
            if face is None or not face.answering:
                return None
            self._apply(face, command)
            face.frames += 1
            self.condition.notify_all()
        log.info("board %d shows %r%s", address, face.text, " blinking" if face.blinking else "")
        return self.protocol.encode_reply(address, ok=True) if self.protocol.acknowledges else None

    def _refuse(self, exc: FrameError) -> bytes | None:
        """Refuse a bad frame meant for one of our boards (if it answers at all)."""
        face = self.faces.get(exc.address) if exc.address is not None else None
        if face is None or not face.answering:
            log.info("emulated boards ignored a frame: %s", exc)
            return None
        log.warning("board %d refused a frame: %s", face.address, exc)
        with self.condition:
            face.refused += 1
            self.condition.notify_all()
        if not self.protocol.acknowledges:
            return None
        return self.protocol.encode_reply(face.address, ok=False)

    @staticmethod
    def _apply(face: BoardFace, command: Command) -> None:
        if command.kind == "brightness":
            face.brightness = command.level
        elif command.kind == "clear":
            face.text, face.blinking = "", False
        else:
            face.text, face.blinking = command.text, command.kind == "blink"

    def wait_for(self, address: int, text: str, *, blinking: bool, timeout_s: float) -> bool:
        """Wait until the board at ``address`` shows ``text`` (blinking or not)."""
        face = self.faces[address]
        with self.condition:
            return self.condition.wait_for(
                lambda: (face.text, face.blinking) == (text, blinking), timeout_s
            )

    def serve(self, port: Port, stop: threading.Event) -> None:
        """Answer the frames arriving on a real serial ``port`` until ``stop`` is set.

        The port needs a read timeout, so that ``stop`` is noticed.
        """
        while not stop.is_set():
            frame = self.protocol.read_frame(port)
            if not frame:
                continue
            reply = self.handle(frame)
            if reply is not None:
                port.write(reply)
                port.flush()


class SimulatedPort:
    """A pyserial-like port whose far end is :class:`EmulatedBoards`, in this process."""

    def __init__(self, boards: EmulatedBoards) -> None:
        self.boards = boards
        self._received = bytearray()
        self._lock = threading.Lock()

    def write(self, data: bytes, /) -> int:
        """Hand a frame to the boards; their reply becomes readable."""
        reply = self.boards.handle(bytes(data))
        with self._lock:
            if reply is not None:
                self._received += reply
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        """The received bytes up to and including ``expected`` (all there are without it)."""
        with self._lock:
            end = self._received.find(expected)
            take = len(self._received) if end < 0 else end + len(expected)
            if size is not None:
                take = min(take, size)
            data = bytes(self._received[:take])
            del self._received[:take]
        return data

    def reset_input_buffer(self) -> None:
        """Drop what was received and not read."""
        with self._lock:
            self._received.clear()

    def close(self) -> None:
        """Nothing to close."""


def main(argv: list[str] | None = None) -> None:
    """Emulate boards on a serial port: ``python -m display.boards.emulator``."""
    import serial  # noqa: PLC0415  (only the command needs a real port)

    parser = argparse.ArgumentParser(description="Emulate LED boards on a serial port.")
    parser.add_argument("port", help="serial port, such as /dev/ttyUSB1 or a socat pty")
    parser.add_argument("addresses", nargs="+", type=int, help="board addresses, 1-254")
    parser.add_argument("--protocol", default="poradovnik")
    parser.add_argument("--baudrate", type=int, default=9600)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    boards = EmulatedBoards(protocol(args.protocol), args.addresses)
    with (
        serial.Serial(args.port, args.baudrate, timeout=0.5) as port,
        contextlib.suppress(KeyboardInterrupt),
    ):
        boards.serve(port, threading.Event())


if __name__ == "__main__":
    main()
