"""The web server's connections: bounded in number, each with little time and room for its head.

uvicorn accepts every connection the listening socket offers and waits as long as a
client likes for a request head of any size. Facing the internet that is a denial of
service: a few hundred sockets that send nothing exhaust the process's file table, and
then every accept fails ("Too many open files") and no page is served. Three limits
stand in front of it here:

* :class:`Listener`, the listening socket, admits at most ``limit`` connections at
  once (:class:`ConnectionGuard`), well below the file limit. A connection past the
  bound takes the place of the one that has waited longest for a request head; when
  every connection is busy (a request in progress, an open live page) it is answered
  ``503`` and closed at once, without a task, a parser or a timer.
* :class:`GuardedProtocol` (uvicorn's httptools protocol) closes a connection whose
  request head is not complete ``head_timeout_s`` after the connection opened, or
  after the first byte of the next head on a kept-alive connection;
* and it answers ``431`` to a head larger than :data:`MAX_HEAD_BYTES`, having fed the
  parser no more than that.

See docs/web.md, "Limits".
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import time
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from common.errors import PoradovnikError

log = logging.getLogger(__name__)

MAX_HEAD_BYTES: Final = 16 * 1024
"""A request line and headers larger than this are refused with 431."""

BACKLOG: Final = 128
"""The listening socket's queue, and how many connections the loop accepts at a time."""

RESERVED_FILES: Final = 2 * BACKLOG
"""File descriptors kept for the rest of the hub (database, MQTT, logs, the loop) and
for connections being closed to make room, when the limit comes from the file limit."""

MIN_CONNECTIONS: Final = 32
"""A file limit that leaves fewer connections than this is an error."""

ACCEPT_PAUSE_S: Final = 1.0
"""After the file table was full, accepting waits this long (as asyncio does)."""


class ConnectionLimitError(PoradovnikError):
    """The open-file limit leaves too few connections for the web server."""


def _reply(status: str, text: str) -> bytes:
    body = text.encode()
    return (
        (
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        ).encode()
        + (b"Retry-After: 5\r\n\r\n" if status.startswith("503") else b"\r\n")
        + body
    )


BUSY: Final = _reply("503 Service Unavailable", "The server is busy; try again in a moment.\n")
TOO_LARGE: Final = _reply(
    "431 Request Header Fields Too Large", "The request's headers are too large.\n"
)


def connection_limit(configured: int | None) -> int:
    """The number of connections to admit: ``configured``, or what the file limit allows.

    Raises :class:`ConnectionLimitError` when the file limit (``ulimit -n``, systemd's
    ``LimitNOFILE``) cannot hold ``configured`` connections, or leaves fewer than
    :data:`MIN_CONNECTIONS`.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured or 65536
    allowed = soft - RESERVED_FILES
    if configured is not None and configured > allowed:
        raise ConnectionLimitError(
            f"[web] max_connections = {configured} needs an open-file limit of at least "
            f"{configured + RESERVED_FILES}, and this process has {soft}: raise the limit "
            "(LimitNOFILE= in the unit, ulimit -n) or lower max_connections"
        )
    limit = allowed if configured is None else configured
    if limit < MIN_CONNECTIONS:
        raise ConnectionLimitError(
            f"the open-file limit of {soft} is too low for the web server: raise it to "
            f"{MIN_CONNECTIONS + RESERVED_FILES} or more (LimitNOFILE= in the unit, ulimit -n)"
        )
    return limit


class ConnectionGuard:
    """Counts the open connections and knows which of them wait for a request head.

    Used on the event loop only.
    """

    def __init__(self, limit: int, *, head_timeout_s: float) -> None:
        self.limit = limit
        """Connections admitted at once."""
        self.head_timeout_s = head_timeout_s
        """Time for a complete request head."""
        self.open = 0
        """Connections accepted and not yet closed."""
        self.refused = 0
        """Connections refused since the start."""
        self._idle: dict[GuardedProtocol, None] = {}  # the longest waiting first

    def admit(self) -> bool:
        """Whether a connection just accepted may stay; makes room if it can."""
        if self.open >= self.limit:
            if not self._idle:
                self.refused += 1
                log.warning(
                    "refusing new connections: %d are open, all busy ([web] max_connections)",
                    self.limit,
                )
                return False
            log.warning(
                "the web server is full (%d connections): closing the ones that wait "
                "longest for a request",
                self.limit,
            )
            oldest = next(iter(self._idle))
            self.release(oldest)
            oldest.transport.close()
        self.open += 1
        return True

    def opened(self, protocol: GuardedProtocol) -> None:
        """``protocol`` took the place admitted to its connection; it waits for a head."""
        protocol.counted = True
        self._idle[protocol] = None

    def idle(self, protocol: GuardedProtocol) -> None:
        """``protocol`` now waits for a request head: it may be closed to make room."""
        self._idle.pop(protocol, None)
        self._idle[protocol] = None

    def busy(self, protocol: GuardedProtocol) -> None:
        """``protocol`` has a request in progress."""
        self._idle.pop(protocol, None)

    def release(self, protocol: GuardedProtocol) -> None:
        """``protocol``'s connection is closing: its place is free (once)."""
        self._idle.pop(protocol, None)
        if protocol.counted:
            protocol.counted = False
            self.open -= 1


class Listener(socket.socket):
    """The listening socket: accepts only what its :class:`ConnectionGuard` admits."""

    guard: ConnectionGuard
    _paused_until: float = 0.0

    def accept(self) -> tuple[socket.socket, Any]:
        """The next admitted connection; the others are refused on the way.

        Raises :class:`BlockingIOError` when none waits (or after refusing a batch, so
        the loop does other work in between), and for :data:`ACCEPT_PAUSE_S` after the
        file table was full: asyncio's accept loop would otherwise try (and log) again
        at once, up to its backlog each time.
        """
        if time.monotonic() < self._paused_until:
            raise BlockingIOError(errno.EAGAIN, "accepting paused")
        for _ in range(BACKLOG):
            try:
                connection, address = super().accept()
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    self._paused_until = time.monotonic() + ACCEPT_PAUSE_S
                raise
            if self.guard.admit():
                return connection, address
            _refuse(connection)
        raise BlockingIOError(errno.EAGAIN, "more connections wait")


def _refuse(connection: socket.socket) -> None:
    """Answer 503 (if the socket takes it now) and close: no task, parser or timer."""
    connection.setblocking(False)
    with contextlib.suppress(OSError):  # gone already, or its buffer is full: closing says it
        connection.send(BUSY)
    connection.close()


def listen(host: str, port: int, guard: ConnectionGuard) -> Listener:
    """A non-blocking :class:`Listener` on ``host:port``; raises :class:`OSError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = Listener(family, socket.SOCK_STREAM)
    sock.guard = guard
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class GuardedConfig(uvicorn.Config):
    """uvicorn's configuration with the :class:`ConnectionGuard` its protocols report to."""

    def __init__(self, app: Any, *, guard: ConnectionGuard, **options: Any) -> None:
        super().__init__(app, http=GuardedProtocol, backlog=BACKLOG, **options)
        self.guard = guard


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline and a size limit for each request head."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, GuardedConfig)
        self.guard = config.guard
        self.awaiting_head = True
        """No request head is being parsed or served: the next bytes start one."""
        self.refused = False
        """The head was too large: what else comes is read and dropped until it closes."""
        self.counted = False
        """Whether this connection holds one of the guard's places."""
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """A new connection: it waits for its head, for at most ``head_timeout_s``."""
        super().connection_made(transport)
        self.guard.opened(self)
        self._arm()

    def eof_received(self) -> None:
        """The client closed its side: the connection closes, and its place is free now."""
        self.guard.release(self)
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is closed: its place is free."""
        self._disarm()
        self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, no more than :data:`MAX_HEAD_BYTES` of one head."""
        if self.refused:
            return
        if not self.awaiting_head:
            super().data_received(data)
            return
        if self._deadline is None:  # the first bytes of a kept-alive connection's next head
            self._arm()
        room = MAX_HEAD_BYTES - self._head_bytes
        self._head_bytes += len(data)
        if len(data) <= room:
            super().data_received(data)
            return
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self.awaiting_head:
            self._refuse_head()
            return
        super().data_received(data[room:])

    def _refuse_head(self) -> None:
        """Answer 431 and end the connection.

        The client can read the answer, since the rest of its head is read (and dropped)
        until it closes, or the head's time is up.
        """
        log.warning("refused a request head larger than %d bytes (431)", MAX_HEAD_BYTES)
        self.refused = True
        self.transport.write(TOO_LARGE)
        self.transport.write_eof()

    def on_headers_complete(self) -> None:
        """The head is complete: no deadline any more, and the connection is busy."""
        self.awaiting_head = False
        self._disarm()
        self.guard.busy(self)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is read: what comes next is the next head, and counts as one."""
        super().on_message_complete()
        self.awaiting_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        """The answer is sent: without a next request the connection is idle again."""
        super().on_response_complete()
        closing = self.transport.is_closing() or not self.counted
        if self.awaiting_head and self.cycle.response_complete and not closing:
            self.guard.idle(self)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.guard.head_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self.awaiting_head and not self.transport.is_closing():
            self.transport.close()
