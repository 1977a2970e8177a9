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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Self
from urllib.parse import parse_qsl

import uvicorn
from a2wsgi import WSGIMiddleware
from flask import Flask

from common.errors import PoradovnikError
from common.settings import WebSettings
from hub.web.cache import CACHEABLE, VersionedCache
from hub.web.connections import (
    ConnectionGuard,
    ConnectionLimitError,
    GuardedConfig,
    connection_limit,
    listen,
)
from hub.web.context import hub
from hub.web.i18n import negotiate
from hub.web.live import AsgiScope, LiveEvents, Message, Receive, Send
from hub.web.metrics import CACHED_ROUTE

log = logging.getLogger(__name__)

LIVE_PREFIX: Final = "/live/"
"""Paths served as event streams on the loop."""

STOP_TIMEOUT_S: Final = 10.0

KEEP_ALIVE_S: Final = 20
"""A kept-alive connection with no next request is closed after this many seconds."""

MIN_FREE_CONNECTIONS: Final = 16
"""Connections kept for pages when live pages take their maximum (at least this, or an
eighth of all)."""


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

    def __init__(self, app: Flask, live: LiveEvents, *, workers: int, proxy_hops: int) -> None:
        self.flask = WSGIMiddleware(app, workers=workers)  # type: ignore[arg-type]
        self.live = live
        self.proxy_hops = proxy_hops
        current = hub(app)
        self.config = current.config
        self.metrics = current.metrics
        self.cache: VersionedCache[Cached] = VersionedCache(current.feed, current.config)

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        """Route one connection's request."""
        if scope["type"] != "http":
            await self.flask(scope, receive, send)  # type: ignore[arg-type]
            return
        if scope["path"].startswith(LIVE_PREFIX):
            await self.live(scope, receive, send)
            return
        key = self.cache_key(scope)
        if key is None:
            await self.flask(scope, receive, send)  # type: ignore[arg-type]
            return
        started = time.perf_counter()
        hit = self.cache.find(key)
        if hit is not None:
            # Timed up to the answer, as Flask's are (before it is sent).
            if self.metrics is not None:
                self.metrics.observe(CACHED_ROUTE, hit.status, time.perf_counter() - started)
            await send(
                {"type": "http.response.start", "status": hit.status, "headers": hit.headers}
            )
            await send({"type": "http.response.body", "body": hit.body})
            return
        stamp = self.cache.stamp()
        recorder = _Recorder(send, lambda answer: self.cache.put(key, stamp, answer))
        await self.flask(scope, receive, recorder)  # type: ignore[arg-type]

    def cache_key(self, scope: AsgiScope) -> tuple[str, str, bool] | None:
        """What a cacheable answer depends on: the path, the page's language, HTTPS.

        The language is negotiated here as the views negotiate it
        (:func:`~hub.web.i18n.negotiate`), so a client cannot fill the cache with
        variants of its query string or headers: one entry per page and language.
        """
        if scope["method"] != "GET":
            return None
        cookie = accept = proto = b""
        for name, value in scope["headers"]:
            if name == b"cookie":
                cookie = value
            elif name == b"accept-language":
                accept = value
            elif name == b"x-forwarded-proto":
                proto = value
        wanted = _query_lang(scope["query_string"]) or _cookie_lang(cookie)
        offered = self.config.branding().languages
        lang = negotiate(offered, wanted, accept.decode("latin-1"))
        return (scope["path"], lang, scope["scheme"] == "https" or self._forwarded_https(proto))

    def _forwarded_https(self, proto: bytes) -> bool:
        """Whether ProxyFix, trusting ``proxy_hops`` proxies, takes the request as HTTPS."""
        if not self.proxy_hops:
            return False
        values = proto.split(b",")
        return len(values) >= self.proxy_hops and values[-self.proxy_hops].strip() == b"https"


_MARKER: Final = CACHEABLE.lower().encode()
_LANG_COOKIE: Final = re.compile(rb"(?:^|;)\s*lang=([^;]*)")


def _query_lang(query: bytes) -> str | None:
    """The first ``lang`` of a query string, as ``request.args.get("lang")`` reads it."""
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "lang":
            return value
    return None


def _cookie_lang(cookie: bytes) -> str | None:
    match = _LANG_COOKIE.search(cookie)
    return match.group(1).decode("latin-1").strip() if match else None


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


class ThreadedServer:
    """An ASGI app served by uvicorn on a thread of its own, behind a :class:`ConnectionGuard`.

    The hub's :class:`WebServer` is one; the city's web pages are served by another
    (:func:`serve_wsgi`). :meth:`stop` ends it.
    """

    def __init__(self, asgi: Any, *, host: str, port: int, guard: ConnectionGuard) -> None:
        self.guard = guard
        """The connections' bounds (see :mod:`hub.web.connections`)."""
        try:
            self.socket = listen(host, port, guard)
        except OSError as exc:
            msg = f"the web server cannot listen on {host}:{port}: {exc.strerror}"
            raise WebError(msg) from None
        self.port: int = self.socket.getsockname()[1]
        """The port it listens on (the chosen one when asked for port 0)."""
        config = GuardedConfig(
            asgi,
            guard=guard,
            loop="asyncio",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            # Forwarded headers are trusted only as [web] proxy_hops says (ProxyFix).
            proxy_headers=False,
            timeout_keep_alive=KEEP_ALIVE_S,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="poradovnik-web", daemon=True)

    def start(self) -> Self:
        """Start serving; the socket already listens, so connections wait until it runs."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self.socket])
        except Exception:
            log.exception("the web server stopped with an error")

    def stop(self) -> None:
        """Finish open requests (briefly), close the socket."""
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        self.socket.close()


class WebServer(ThreadedServer):
    """The hub's web server on its own thread; :meth:`stop` ends it."""

    def __init__(
        self, app: Flask, live: LiveEvents, *, web: WebSettings, guard: ConnectionGuard, port: int
    ) -> None:
        self.router = Router(app, live, workers=web.workers, proxy_hops=web.proxy_hops)
        self.board = hub(app).board
        super().__init__(self.router, host=web.host, port=port, guard=guard)

    def stop(self) -> None:
        """Finish open requests (briefly), close the streams and the socket."""
        super().stop()
        self.router.flask.executor.shutdown(wait=False, cancel_futures=True)
        self.board.close()


class WsgiServer(ThreadedServer):
    """A plain Flask app on its own thread, pages in a pool of ``workers`` threads."""

    def __init__(
        self, app: Flask, *, host: str, port: int, workers: int, guard: ConnectionGuard
    ) -> None:
        self.wsgi = WSGIMiddleware(app, workers=workers)  # type: ignore[arg-type]
        super().__init__(self.wsgi, host=host, port=port, guard=guard)

    def stop(self) -> None:
        """Finish open requests (briefly), close the socket and the pool."""
        super().stop()
        self.wsgi.executor.shutdown(wait=False, cancel_futures=True)


def serve_wsgi(app: Flask, web: WebSettings, *, host: str, port: int) -> WsgiServer:
    """Serve a Flask app other than the hub's (the city's pages) on ``host:port``.

    With the bounds of ``[web]``: ``workers``, ``max_connections`` and
    ``head_timeout_s``. Raises :class:`WebError` when it cannot listen, or when the
    open-file limit is too low.
    """
    try:
        limit = connection_limit(web.max_connections)
    except ConnectionLimitError as exc:
        raise WebError(str(exc)) from None
    guard = ConnectionGuard(limit, head_timeout_s=web.head_timeout_s)
    return WsgiServer(app, host=host, port=port, workers=web.workers, guard=guard).start()


def serve(app: Flask, *, port: int | None = None) -> WebServer:
    """Serve ``app`` (built by :func:`~hub.web.create_app`) on ``[web] host`` and ``port``.

    ``port`` overrides the settings' (0 picks a free one, as tests and benchmarks do).
    Raises :class:`WebError` when it cannot listen, or when the open-file limit is too
    low for ``[web] max_connections``.
    """
    web = hub(app).settings.web
    try:
        limit = connection_limit(web.max_connections)
    except ConnectionLimitError as exc:
        raise WebError(str(exc)) from None
    live_limit = min(web.live_max_clients, limit - max(MIN_FREE_CONNECTIONS, limit // 8))
    if live_limit < web.live_max_clients:
        log.warning(
            "live pages are limited to %d, not [web] live_max_clients = %d: the web server "
            "admits %d connections (the open-file limit allows no more; LimitNOFILE=)",
            live_limit,
            web.live_max_clients,
            limit,
        )
    live = LiveEvents(hub(app).feed, max_clients=live_limit)
    guard = ConnectionGuard(limit, head_timeout_s=web.head_timeout_s)
    return WebServer(
        app, live, web=web, guard=guard, port=web.port if port is None else port
    ).start()
