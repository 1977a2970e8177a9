"""The city role: its database, its consumer and its web pages, in two processes.

``poradovnik city`` runs :func:`run_city`: the city's database upgraded, the consumer
(:mod:`city.consumer`) started in a child process of its own (:mod:`city.process`), so
that the web pages never take its interpreter lock, the branches' live state followed
on a connection of its own (:class:`~city.live.LiveFeed`), the city's web pages served
beside it (the app from ``city.web.create_city_app(settings, services)``), then a main
loop that tells systemd the service is alive while the consumer's process reports
progress of its loops, the live state's MQTT network thread and the main loop all make
progress (:mod:`common.liveness`).

The other ``poradovnik city …`` commands use the helpers here too: opening the store,
the branch's ``[uplink]`` section, the broker's files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from city.broker import write_city_broker_config
from city.live import LiveCity, LiveFeed
from city.process import ConsumerProcess
from city.services import CityServices
from city.store import Branch, CityStore
from common.lifecycle import stop_on_signals
from common.liveness import BEAT_S, Heartbeat, Watchdog
from common.sdnotify import Notifier
from common.settings import Settings, SettingsError

if TYPE_CHECKING:
    from flask import Flask

    from hub.web.server import WsgiServer

log = logging.getLogger(__name__)

WebFactory = Callable[[Settings, CityServices], "Flask"]
"""What builds the city's web app: ``city.web.create_city_app``."""


def open_city_store(settings: Settings) -> CityStore:
    """Open the city's database (``[city] database_url``) and bring its schema up to date.

    Raises :class:`SettingsError` when no database is set, and
    :class:`~city.store.CityError` when it cannot be reached.
    """
    url = settings.city.database_url
    if url is None:
        raise SettingsError(
            [
                "[city] database_url: missing; the city keeps every branch's history in "
                "PostgreSQL: set a URL such as 'postgresql+psycopg://city@db.example/"
                "poradovnik_city'"
            ]
        )
    store = CityStore(url)
    try:
        store.upgrade()
    except BaseException:
        store.close()
        raise
    return store


def db_upgrade(settings: Settings) -> str:
    """``poradovnik city db upgrade``: migrate the city's database to this version's schema."""
    with open_city_store(settings) as store:
        return f"the city's database {store.shown_url} is up to date"


def uplink_section(settings: Settings, branch: Branch, password: str) -> str:
    """The ``[uplink]`` section a branch's settings need to reach the city (with its password).

    The host is ``[city] uplink_host``, else the host of ``[city] public_url``, else
    ``[city] mqtt_host``; the port is the city broker's TLS listener when it has one.
    """
    city, broker = settings.city, settings.broker
    host = city.uplink_host
    if host is None and city.public_url is not None:
        host = urlsplit(city.public_url).hostname
    tls = broker.tls_port is not None
    lines = [
        f"# The branch {branch.site}'s link to the city {city.name}: put it into the branch",
        "# hub's settings, then run `poradovnik broker config` there. The password is",
        "# shown this once.",
        "[uplink]",
        f'host = "{host or city.mqtt_host}"',
        f"port = {broker.tls_port if tls else broker.port}",
        f'username = "{branch.username}"',
        f'password = "{password}"',
        f"tls = {str(tls).lower()}",
        f"catalogue = {str(branch.catalogue).lower()}",
    ]
    return "\n".join(lines) + "\n"


def run_city(settings: Settings, web_factory: WebFactory | None) -> None:
    """``poradovnik city``: run the consumer's process and the web pages until told to stop.

    ``web_factory`` builds the web app (``None``: the consumer alone, no pages, and no
    live state to follow).
    """
    store = open_city_store(settings)
    live = LiveCity()
    consumer = ConsumerProcess(settings)
    feed = LiveFeed(settings.city, live) if web_factory is not None else None

    def rewrite_broker_files() -> None:
        write_city_broker_config(settings, store)

    services = CityServices(
        settings, store, live, publisher=consumer, on_branches_changed=rewrite_broker_files
    )
    web: WsgiServer | None = None
    watched = [consumer.heartbeat]
    # The signals are taken first: a stop asked for while the pages start is kept.
    with stop_on_signals() as stop:
        try:
            consumer.start()
            if web_factory is not None and feed is not None:
                feed.start()
                watched.append(feed.connection.heartbeat)
                web = start_web(settings, web_factory(settings, services))
            else:
                log.warning("the city's web pages are not installed: running the consumer only")
            serve(services, stop, Notifier(), watched)
        finally:
            if web is not None:
                web.stop()
            if feed is not None:
                feed.stop()
            consumer.stop()
            store.close()


def start_web(settings: Settings, app: Flask, *, port: int | None = None) -> WsgiServer:
    """Serve the city's web ``app`` on ``[city] web_host`` and ``web_port`` (or ``port``).

    ``port`` 0 picks a free one (tests). Raises :class:`~hub.web.server.WebError` when
    it cannot listen.
    """
    from hub.web.server import serve_wsgi  # noqa: PLC0415 (Flask only where served)

    city = settings.city
    server = serve_wsgi(
        app, settings.web, host=city.web_host, port=city.web_port if port is None else port
    )
    log.info("the city's web pages on http://%s:%d/", city.web_host, server.port)
    return server


def serve(
    services: CityServices,
    stop: threading.Event,
    notifier: Notifier,
    watched: list[Heartbeat],
) -> None:
    """The city's main loop until ``stop``: a heartbeat, and the watchdog's pings.

    The watchdog is pinged while the main loop and the ``watched`` loops (the
    consumer's process, the live state's MQTT network thread) all make progress.
    """
    main = Heartbeat("city's main loop")
    with Watchdog(notifier, [main, *watched]) as watchdog:
        branches = len(services.store.branches())
        watchdog.ready(f"serving {branches} branches")
        log.info(
            "city %s ready: %d branches, database %s",
            services.settings.city.name,
            branches,
            services.store.shown_url,
        )
        while not stop.wait(BEAT_S):
            main.beat()
    notifier.stopping()
