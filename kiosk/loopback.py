"""A stand-in network printer: records the ESC/POS bytes it gets, answers status queries.

It listens on 127.0.0.1 like a printer's raw port (9100) and answers each real-time
status query ``DLE EOT n`` with the byte its ``replies`` give for ``n``, or stays
silent when ``replies`` is ``None`` (as a printer that does not answer). The tests
and ``bench/kiosk_print.py`` point python-escpos's ``Network`` printer at it; it also lets
one try a kiosk's network printing without a printer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

__all__ = ["LoopbackPrinter"]

_QUERY = b"\x10\x04"


class LoopbackPrinter:
    """A TCP "printer" on 127.0.0.1 (port chosen by the system, see :attr:`port`)."""

    def __init__(self, replies: dict[int, int] | None = None) -> None:
        self.replies = replies
        """Status byte per ``DLE EOT n``; ``None`` for a printer that never answers."""
        self.data = bytearray()
        """Everything received so far, status queries included."""
        self.last_byte_at = 0.0
        """``time.perf_counter()`` when the latest bytes arrived."""
        self.connections = 0
        self._changed = threading.Condition()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._server.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="loopback-printer", daemon=True)
        self._thread.start()

    def wait_for(self, marker: bytes, timeout_s: float, *, start: int = 0) -> bool:
        """Wait until ``marker`` has been received (after offset ``start``)."""
        with self._changed:
            return self._changed.wait_for(lambda: marker in self.data[start:], timeout_s)

    def take(self) -> bytes:
        """Everything received so far, emptying the record."""
        with self._changed:
            data = bytes(self.data)
            self.data.clear()
            return data

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._clients.append(client)
            self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        pending = b""
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            with self._changed:
                self.data += chunk
                self.last_byte_at = time.perf_counter()
                self._changed.notify_all()
            pending += chunk
            answer = b""
            while (at := pending.find(_QUERY)) >= 0 and at + 2 < len(pending):
                n = pending[at + 2]
                if self.replies is not None and n in self.replies:
                    answer += bytes([self.replies[n]])
                pending = pending[at + 3 :]
            pending = pending[-2:]  # enough for a query cut in two
            if answer:
                try:
                    client.sendall(answer)
                except OSError:
                    return

    def close(self) -> None:
        """Stop listening and drop the connections."""
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._server.close()
        self._thread.join(timeout=5)
        self.hang_up()

    def hang_up(self) -> None:
        """Drop every connection, as a printer switched off and on again does."""
        clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def __enter__(self) -> LoopbackPrinter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
