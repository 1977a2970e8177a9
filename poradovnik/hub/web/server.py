"""Serving the web side: uvicorn on its own thread, pages in a thread pool, streams on the loop.

One uvicorn server (a production ASGI server, with the httptools parser) runs
in a thread of the hub process, next to the MQTT bridge, so that the pages and
the API act through the same :class:`~poradovnik.hub.service.QueueService`.
Requests for ``/live/…`` (server-sent events) are served by
:class:`~poradovnik.hub.web.live.LiveEvents` on the event loop itself; every
other request goes to the Flask app through a2wsgi's WSGI adapter, which runs it
on a bounded pool of ``[web] workers`` threads. Open live pages therefore hold
no worker thread: a thread-per-connection server would give each open phone a
thread for as long as its page is open, and 50 open pages would starve the rest
of the site. See docs/web.md.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Final

import uvicorn
from a2wsgi import WSGIMiddleware
from flask import Flask

from poradovnik.common.errors import PoradovnikError
from poradovnik.common.settings import Settings
from poradovnik.hub.bridge import HubBridge
from poradovnik.hub.service import QueueService
from poradovnik.hub.web import create_app
from poradovnik.hub.web.context import hub
from poradovnik.hub.web.live import LiveEvents, Receive, Scope, Send

log = logging.getLogger(__name__)

LIVE_PREFIX: Final = "/live/"
"""Paths served as event streams on the loop."""

STOP_TIMEOUT_S: Final = 10.0


class WebError(PoradovnikError):
    """The web server cannot start (e.g. its port is taken)."""


class Router:
    """The ASGI app: event streams on the loop, everything else to Flask's thread pool."""

    def __init__(self, app: Flask, live: LiveEvents, *, workers: int) -> None:
        self.flask = WSGIMiddleware(app, workers=workers)  # type: ignore[arg-type]
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one connection's request."""
        if scope["type"] == "http" and scope["path"].startswith(LIVE_PREFIX):
            await self.live(scope, receive, send)
        else:
            await self.flask(scope, receive, send)  # type: ignore[arg-type]


class WebServer:
    """The hub's web server on its own thread; :meth:`stop` ends it."""

    def __init__(self, app: Flask, live: LiveEvents, *, host: str, port: int, workers: int) -> None:
        self.router = Router(app, live, workers=workers)
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
