"""The RS-485 bus: a serial port, and commands to addressed boards that must be acknowledged.

:func:`open_serial` opens the port with pyserial (a device such as ``/dev/ttyUSB0`` or a
pyserial URL) and, where the port supports it, switches on the kernel's RS-485 mode, which
drives the transceiver's direction pin (RTS) around each frame. :class:`BoardBus` sends a
command and waits, a bounded time, for the board's acknowledgement, sending it again a few
times before it gives up.
"""

from __future__ import annotations

import logging
from typing import Literal, cast

import serial
import serial.rs485

from common.errors import PoradovnikError
from display.boards.protocols import BoardProtocol, Command, FrameError, Port

__all__ = ["BoardBus", "open_serial"]

log = logging.getLogger(__name__)


_FRAMINGS = {
    "8N1": (serial.EIGHTBITS, serial.PARITY_NONE, serial.STOPBITS_ONE),
    "7E1": (serial.SEVENBITS, serial.PARITY_EVEN, serial.STOPBITS_ONE),
    "7E2": (serial.SEVENBITS, serial.PARITY_EVEN, serial.STOPBITS_TWO),
}


def open_serial(
    url: str,
    *,
    baudrate: int,
    timeout_s: float,
    rs485: Literal["auto", "on", "off"] = "auto",
    framing: Literal["8N1", "7E1", "7E2"] = "8N1",
) -> Port:
    """Open the bus's serial port, reads waiting at most ``timeout_s``.

    ``framing``: each byte's data bits, parity and stop bits (8N1 by default).
    ``rs485``: ``on`` requires the kernel's RS-485 mode (raises if the port has none),
    ``auto`` uses it where the port has it, ``off`` leaves direction control to the
    adapter. Raises :class:`PoradovnikError` if the port cannot be opened.
    """
    bytesize, parity, stopbits = _FRAMINGS[framing]
    try:
        port = serial.serial_for_url(
            url,
            baudrate=baudrate,
            bytesize=bytesize,
            parity=parity,
            stopbits=stopbits,
            timeout=timeout_s,
            write_timeout=max(1.0, 4 * timeout_s),
        )
    except (serial.SerialException, ValueError) as exc:
        raise PoradovnikError(
            f"cannot open the LED boards' serial port {url}: {exc}; check [display] boards_port "
            "and that the service user may use it (group dialout)"
        ) from None
    if rs485 == "off":
        return cast("Port", port)
    try:
        port.rs485_mode = serial.rs485.RS485Settings(rts_level_for_tx=True, rts_level_for_rx=False)
    except (ValueError, NotImplementedError, OSError) as exc:
        port.rs485_mode = None
        if rs485 == "on":
            port.close()
            raise PoradovnikError(
                f"the serial port {url} has no RS-485 mode ({exc}); set [display] "
                'boards_rs485 = "off" for an adapter that switches direction by itself'
            ) from None
        log.info("%s has no kernel RS-485 mode; the adapter must switch direction itself", url)
    else:
        log.info("%s: kernel RS-485 mode on (RTS drives the transmitter)", url)
    return cast("Port", port)


class BoardBus:
    """Sends commands to addressed boards over ``port`` and checks their acknowledgement.

    A frame that gets no acknowledgement within the port's read timeout, or is refused,
    is sent again, ``retries`` times at most; boards whose protocol does not acknowledge
    are only written to. Only one thread may use a bus.
    """

    def __init__(self, protocol: BoardProtocol, *, port: Port, retries: int = 2) -> None:
        self.protocol = protocol
        self.port = port
        self.retries = retries

    def send(self, address: int, command: Command) -> str | None:
        """Send ``command`` to the board at ``address`` until it acknowledges.

        Returns ``None`` once it did (for boards that do not acknowledge: once it is
        written), else what went wrong on the last try.
        """
        frame = self.protocol.encode_command(address, command)
        if not frame:
            return None  # nothing to send in this protocol
        acknowledges = self.protocol.acknowledges
        problem = "no answer"
        for _ in range(self.retries + 1):
            try:
                self.port.reset_input_buffer()
                self.port.write(frame)
                self.port.flush()
                reply = self.protocol.read_frame(self.port) if acknowledges else b""
            except (serial.SerialException, OSError) as exc:
                problem = f"serial port failed: {exc}"
                continue
            if not acknowledges:
                return None
            if not reply:
                problem = "no answer"
                continue
            try:
                replied, ok = self.protocol.parse_reply(reply)
            except FrameError as exc:
                problem = f"garbled answer: {exc}"
                continue
            if replied != address:
                problem = f"board {replied} answered instead"
                continue
            if ok:
                return None
            problem = "refused the frame"
        return problem
