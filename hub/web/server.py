"""Serving the web side: uvicorn on its own thread, pages in a thread pool, streams on the loop.

One uvicorn server (a production ASGI server, with the httptools parser) runs
in a thread of the hub process, next to the MQTT bridge, so that the pages and
the API act through the same :class:`~hub.service.QueueService`.
Requests for ``/live/…`` (server-sent events) are served by
:class:`~hub.web.live.LiveEvents` on the event loop itself, and so are
answers that the Flask views marked cacheable and that are still current (the
queue page, the my-ticket pages: see :mod:`hub.web.cache`); every
other request goes to the Flask app through a2wsgi's WSGI adapter, which runs it
on a bounded pool of ``[web] workers`` threads. Open live pages therefore hold
no worker thread: a thread-per-connection server would give each open phone a
thread for as long as its page is open, and 50 open pages would starve the rest
of the site. See docs/web.md.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import uvicorn
from a2wsgi import WSGIMiddleware
from flask import Flask

from common.errors import PoradovnikError
from common.settings import Settings
from hub.bridge import HubBridge
from hub.service import QueueService
from hub.web import create_app
from hub.web.cache import CACHEABLE, VersionedCache
from hub.web.context import hub
from hub.web.live import LiveEvents, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

LIVE_PREFIX: Final = "/live/"
"""Paths served as event streams on the loop."""

STOP_TIMEOUT_S: Final = 10.0


class WebError(PoradovnikError):
    """The web server cannot start (e.g. its port is taken)."""


@dataclass(frozen=True, slots=True)
class Cached:
    """A whole answer, as the server replays it."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Router:
    """The ASGI app: event streams and cached pages on the loop, the rest to Flask's pool."""

    def __init__(self, app: Flask, live: LiveEvents, *, workers: int) -> None:
        self.flask = WSGIMiddleware(app, workers=workers)  # type: ignore[arg-type]
        self.live = live
        current = hub(app)
        self.cache: VersionedCache[Cached] = VersionedCache(current.feed, current.config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one connection's request."""
        if scope["type"] != "http":
            await self.flask(scope, receive, send)  # type: ignore[arg-type]
            return
        if scope["path"].startswith(LIVE_PREFIX):
            await self.live(scope, receive, send)
            return
        key = _cache_key(scope)
        if key is None:
            await self.flask(scope, receive, send)  # type: ignore[arg-type]
            return
        hit = self.cache.find(key)
        if hit is not None:
            await send(
                {"type": "http.response.start", "status": hit.status, "headers": hit.headers}
            )
            await send({"type": "http.response.body", "body": hit.body})
            return
        stamp = self.cache.stamp()
        recorder = _Recorder(send, lambda answer: self.cache.put(key, stamp, answer))
        await self.flask(scope, receive, recorder)  # type: ignore[arg-type]


_MARKER: Final = CACHEABLE.lower().encode()
_LANG_COOKIE: Final = re.compile(rb"(?:^|;)\s*lang=([^;]*)")


def _cache_key(scope: Scope) -> tuple[object, ...] | None:
    """What a cacheable answer depends on: path, query, scheme, ``lang`` cookie, languages."""
    if scope["method"] != "GET":
        return None
    lang = accept = b""
    for name, value in scope["headers"]:
        if name == b"cookie":
            match = _LANG_COOKIE.search(value)
            lang = match.group(1) if match else b""
        elif name == b"accept-language":
            accept = value
    return (scope["path"], scope["query_string"], scope["scheme"], lang, accept)


class _Recorder:
    """Passes an answer on, without the marker, and keeps it if it was marked cacheable."""

    def __init__(self, send: Send, keep: Callable[[Cached], None]) -> None:
        self.send = send
        self.keep = keep
        self.start: Message | None = None
        self.body: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message["headers"] if k.lower() != _MARKER]
            marked = len(headers) != len(message["headers"])
            cookie = any(k.lower() == b"set-cookie" for k, _ in headers)
            if marked and not cookie and message["status"] == 200:
                self.start = {**message, "headers": headers}
            message = {**message, "headers": headers}
        elif message["type"] == "http.response.body" and self.start is not None:
            self.body.append(message.get("body", b""))
            if not message.get("more_body", False):
                self.keep(Cached(self.start["status"], self.start["headers"], b"".join(self.body)))
        await self.send(message)


class WebServer:
    """The hub's web server on its own thread; :meth:`stop` ends it."""

    def __init__(self, app: Flask, live: LiveEvents, *, host: str, port: int, workers: int) -> None:
        self.router = Router(app, live, workers=workers)
        self.board = hub(app).board
        self.socket = _listen(host, port)
        self.port: int = self.socket.getsockname()[1]
        """The port it listens on (the chosen one when asked for port 0)."""
        config = uvicorn.Config(
            self.router,
            http="httptools",
            loop="asyncio",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            # Forwarded headers are trusted only as [web] proxy_hops says (ProxyFix).
            proxy_headers=False,
            timeout_keep_alive=20,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="poradovnik-web", daemon=True)

    def start(self) -> WebServer:
        """Start serving; the socket already listens, so connections wait until it runs."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self.socket])
        except Exception:
            log.exception("the web server stopped with an error")

    def stop(self) -> None:
        """Finish open requests (briefly), close the streams and the socket."""
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        self.socket.close()
        self.router.flask.executor.shutdown(wait=False, cancel_futures=True)
        self.board.close()


def serve_web(
    settings: Settings,
    queue: QueueService,
    *,
    bridge: HubBridge | None = None,
    port: int | None = None,
) -> WebServer:
    """Build the web app on the hub's parts and serve it on ``[web] host`` and ``port``.

    ``port`` overrides the settings' (0 picks a free one, as tests and benchmarks do).
    """
    app = create_app(settings, queue, bridge=bridge)
    live = LiveEvents(hub(app).feed, max_clients=settings.web.live_max_clients)
    return WebServer(
        app,
        live,
        host=settings.web.host,
        port=settings.web.port if port is None else port,
        workers=settings.web.workers,
    ).start()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise WebError(f"the web server cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock
