"""Live pages: a change counter fed by the queue, and its server-sent events.

The queue service tells :class:`LiveFeed` of every change (a cheap listener: it
bumps a counter and wakes the event loop). Page caches compare the counter to
know when to render again. :class:`LiveEvents` is an ASGI app that serves the
event streams on the server's event loop: each open live page is one coroutine
waiting for the next change, not a thread, so a thousand open phones cost a
thousand small objects, and the pages and the API keep all their worker threads.
An event carries only the new version; the page then fetches its fragment,
which the page cache serves to every open page from one rendering.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from hub.model import Change

log = logging.getLogger(__name__)

AsgiScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEARTBEAT_S: Final = 15.0
"""A comment line this often keeps proxies from closing an idle stream."""

COALESCE_S: Final = 0.2
"""Changes this close together make one event: a burst of calls is one refresh."""

RETRY_MS: Final = 3000
"""How soon a browser reconnects a dropped stream."""

SECURITY_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    (
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)
"""Sent with every response, pages and event streams alike."""


class LiveFeed:
    """A version number that grows with every change of the queue or the catalog."""

    def __init__(self) -> None:
        self.version = 1
        self._lock = threading.Lock()
        self._wakers: list[Callable[[], None]] = []

    def changed(self, _change: Change | None = None) -> None:
        """Bump the version and wake the event streams (a queue listener: stays cheap)."""
        with self._lock:
            self.version += 1
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def on_change(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from the changing thread) after every change."""
        with self._lock:
            self._wakers.append(wake)


class LiveEvents:
    """The ASGI app of the ``/live/`` event streams, bounded to ``max_clients`` at once."""

    def __init__(self, feed: LiveFeed, *, max_clients: int) -> None:
        self.feed = feed
        self.max_clients = max_clients
        self.clients = 0
        """Streams open right now."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: asyncio.Future[None] | None = None
        feed.on_change(self._wake)

    def _wake(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        """On the loop: finish the awaited future and start the next one."""
        current, self._next = self._next, None
        if current is not None and not current.done():
            current.set_result(None)

    def _future(self) -> asyncio.Future[None]:
        """The future that the next change finishes."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = self._loop.create_future()
        return self._next

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        """Serve one stream: the current version, then one event per (coalesced) change."""
        if scope["method"] != "GET":
            await _plain(send, 405, b"only GET")
            return
        if self.clients >= self.max_clients:
            await _plain(send, 503, b"too many live pages; the page reloads by itself")
            return
        self.clients += 1
        disconnected = asyncio.ensure_future(_disconnect(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": _headers(
                        ("Content-Type", "text/event-stream; charset=utf-8"),
                        ("Cache-Control", "no-store"),
                        ("X-Accel-Buffering", "no"),
                    ),
                }
            )
            sent = 0
            while not disconnected.done():
                # Take the future before reading the version: a change in between
                # finishes this future, so none is missed.
                change = self._future()
                version = self.feed.version
                if version != sent:
                    retry = f"retry: {RETRY_MS}\n" if sent == 0 else ""
                    await _chunk(send, f"{retry}event: version\ndata: {version}\n\n")
                    sent = version
                done, _ = await asyncio.wait(
                    {asyncio.shield(change), disconnected},
                    timeout=HEARTBEAT_S,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if disconnected in done:
                    break
                if not done:
                    await _chunk(send, ": beat\n\n")
                else:
                    await asyncio.sleep(COALESCE_S)  # let a burst of changes settle
        except OSError:
            pass  # the browser went away mid-write
        finally:
            self.clients -= 1
            disconnected.cancel()


def _headers(*extra: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in (*extra, *SECURITY_HEADERS)]


async def _chunk(send: Send, text: str) -> None:
    await send({"type": "http.response.body", "body": text.encode(), "more_body": True})


async def _plain(send: Send, status: int, body: bytes) -> None:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "10")]
    await send({"type": "http.response.start", "status": status, "headers": _headers(*headers)})
    await send({"type": "http.response.body", "body": body})


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
