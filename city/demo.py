"""``poradovnik demo --branches N``: a small city on one machine, with simulated people.

The city's side: its Mosquitto, and ``poradovnik city`` (the consumer that stores every
branch's history, and the city's web pages) on PostgreSQL: the ``[city] database_url``
of the settings, or else a throwaway cluster made for the run in a temporary directory
(:mod:`city.postgres_cluster`; it needs PostgreSQL's ``initdb``). Each branch is the
single office's demo (:mod:`hub.demo`): ``poradovnik demo`` in a process of its own,
with its own Mosquitto bridged to the city's (its ``[uplink]``), its own hub and
database, and the simulated kiosk, counter panels and lobby display; their windows
stay closed (SDL's dummy driver), one city is enough to look at.

The demo registers its branches with the city at every start (their history is sent
again from each branch's own database), gives the city's ``admin`` a new password and
prints where everything is: the city portal, the city admin with its sign-in, and each
branch's portal. It narrates when the city first hears each branch live.
"""

from __future__ import annotations

import logging
import secrets
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import tomli_w
from pydantic import SecretStr

from city.broker import write_city_broker_config
from city.postgres_cluster import ClusterError, throwaway_cluster
from city.store import CityStore, branch_username
from common.errors import PoradovnikError
from common.files import write_private_file
from common.lifecycle import stop_on_signals
from common.settings import MqttSettings, Settings, load_settings
from hub.broker import Mosquitto, free_port, own_files_user
from hub.demo import role_process
from sync_agent import protocol as p
from sync_agent.broker_accounts import new_password
from sync_agent.connection import Inbound, MqttConnection

log = logging.getLogger("poradovnik.demo")

BRANCHES: Final[tuple[tuple[str, str, str], ...]] = (
    ("stare-mesto", "Staré Mesto", "Hlavná 1"),
    ("sever", "Sever", "Severná 12"),
    ("juh", "Juh", "Južná trieda 48"),
    ("zapad", "Západ", "Popradská 7"),
    ("vychod", "Východ", "Trieda SNP 61"),
)
"""The demo's branches: site id, name and address, in the order they are opened."""

MAX_BRANCHES: Final = len(BRANCHES)

WEB_START_S: Final = 60.0
"""How long the city's web pages may take to answer after ``poradovnik city`` starts."""
"""At most this many branches run on one machine (each is a hub with four devices)."""

CONSUMER: Final = "city"
"""The city consumer's account on the city's broker."""

HEADLESS: Final = {"DISPLAY": "", "WAYLAND_DISPLAY": ""}
"""A branch's devices draw on SDL's dummy driver: the city is what there is to look at."""

ADMIN: Final = "admin"
"""The city's demo admin user."""


class CityDemoError(PoradovnikError):
    """The city's demo cannot run here (no PostgreSQL, say); the message says what to do."""


@dataclass(frozen=True)
class DemoBranch:
    """One branch of the demo: its site, name and address, and its portal's port."""

    site: str
    name: str
    address: str
    web_port: int

    @property
    def url(self) -> str:
        """The branch's portal."""
        return f"http://127.0.0.1:{self.web_port}"


@contextmanager
def city_database(url: str | None) -> Iterator[str]:
    """The URL of the city's database: ``url``, or else a throwaway cluster's for the run.

    Raises :class:`CityDemoError` saying what to do when there is no ``url`` and no
    PostgreSQL to make a cluster with.
    """
    if url is not None:
        yield url
        return
    try:
        with throwaway_cluster() as made:
            log.info("city: a throwaway PostgreSQL for this run (gone when it stops)")
            yield made
    except ClusterError as missing:
        raise CityDemoError(
            "the city needs PostgreSQL: set [city] database_url in the settings "
            "(e.g. postgresql+psycopg://user@127.0.0.1/poradovnik_city), or install "
            f"PostgreSQL (Debian package 'postgresql') for a throwaway one ({missing})"
        ) from None


def register_branches(
    store: CityStore, branches: Iterable[tuple[str, str, str, str | None]]
) -> dict[str, str]:
    """Add every branch (site, name, address, portal URL) to the city afresh; their passwords.

    Each branch's new broker password comes back by site. A branch the city knows from
    an earlier run is removed first, with its history: the branch sends all of it again
    from its own database.
    """
    passwords = {}
    for site, name, address, url in branches:
        store.remove_branch(site)
        _, passwords[site] = store.add_branch(site, name=name, address=address, url=url)
    return passwords


def city_settings(data: Path, database_url: str, log_level: str) -> dict[str, Any]:
    """The settings of a ``poradovnik city`` on this machine, its data in ``data``.

    Its broker, its consumer's account and its web pages get new ports of 127.0.0.1.
    """
    broker_port = free_port()
    return {
        "role": "city",
        "city": {
            "name": "Demo",
            "database_url": database_url,
            "mqtt_host": "127.0.0.1",
            "mqtt_port": broker_port,
            "mqtt_username": CONSUMER,
            "mqtt_password": new_password(),
            "web_host": "127.0.0.1",
            "web_port": free_port(),
        },
        "web": {"secure_cookies": False},
        "broker": {
            "dir": str((data / "broker").resolve()),
            "port": broker_port,
            "bind": "127.0.0.1",
        },
        "data": {"dir": str(data.resolve())},
        "logging": {"level": log_level},
    }


def consumer_account(city: dict[str, Any]) -> MqttSettings:
    """The city consumer's account on the city's broker, from :func:`city_settings`."""
    section = city["city"]
    return MqttSettings(
        host=section["mqtt_host"],
        port=section["mqtt_port"],
        username=section["mqtt_username"],
        password=SecretStr(section["mqtt_password"]),
    )


def wait_for_web(port: int, timeout: float) -> None:
    """Wait until the web pages on ``port`` of 127.0.0.1 answer.

    Raises :class:`CityDemoError` when they do not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise CityDemoError(f"the city's web pages did not answer on port {port}") from None
            time.sleep(0.1)


def uplink_section(city: dict[str, Any], site: str, password: str) -> dict[str, Any]:
    """``[uplink]`` of branch ``site`` on the city of :func:`city_settings` (no TLS here)."""
    return {
        "host": "127.0.0.1",
        "port": city["city"]["mqtt_port"],
        "username": branch_username(site),
        "password": password,
        "tls": False,
    }


def branch_settings(
    settings: Settings, data: Path, branch: DemoBranch, city: dict[str, Any], password: str
) -> dict[str, Any]:
    """The settings file of one branch's ``poradovnik demo``: an office with an uplink."""
    return {
        "role": "hub",
        "site": {"id": branch.site, "name": branch.name},
        "data": {"dir": str((data / branch.site).resolve())},
        "web": {"host": "127.0.0.1", "port": branch.web_port, "secure_cookies": False},
        "uplink": uplink_section(city, branch.site, password),
        "logging": {"level": settings.logging.level},
    }


class CityNarrator:
    """Logs once per branch when the city's broker first brings its live queues."""

    def __init__(self, connection: MqttConnection) -> None:
        self.connection = connection
        self._heard: set[str] = set()
        connection.subscribe(f"{p.ROOT}/+/queue/+", self._on_queue)

    def _on_queue(self, message: Inbound) -> None:
        site = message.topic.split("/")[2]
        if site in self._heard or not message.payload:
            return
        try:
            state = p.decode(p.QueueState, message.payload)
        except p.ProtocolError:
            return
        self._heard.add(site)
        log.info("city: hears branch %s live (%s: %d waiting)", site, state.service, state.waiting)


def run_city_demo(settings: Settings, branches: int) -> None:
    """Run the city and ``branches`` demo offices until interrupted."""
    if not 1 <= branches <= MAX_BRANCHES:
        raise CityDemoError(f"--branches: from 1 to {MAX_BRANCHES}")
    data = settings.data.dir / "city"
    offices = [DemoBranch(site, name, address, free_port()) for site, name, address in BRANCHES]
    offices = offices[:branches]
    with ExitStack() as stack:
        url = stack.enter_context(city_database(settings.city.database_url))
        store = CityStore(url)
        stack.callback(store.close)
        store.upgrade()
        passwords = register_branches(store, [(o.site, o.name, o.address, o.url) for o in offices])
        admin_password = secrets.token_urlsafe(9)
        store.add_user(ADMIN, admin_password, city_admin=True)
        city = city_settings(data, url, settings.logging.level)
        broker = start_city_broker(city, store, stack)
        log.info("city: broker listening on 127.0.0.1:%d", broker.port)
        watch = MqttConnection(mqtt=consumer_account(city), client_id="poradovnik-city-demo")
        CityNarrator(watch)
        watch.start()
        stack.callback(watch.stop)
        stack.enter_context(role_process("city", "city", city, data / "city.toml"))
        for office in offices:
            config = branch_settings(
                settings, data / "branches", office, city, passwords[office.site]
            )
            path = data / "branches" / f"{office.site}.toml"
            stack.enter_context(
                role_process(f"branch {office.site}", "demo", config, path, env=HEADLESS)
            )
        portal = f"http://127.0.0.1:{city['city']['web_port']}"
        wait_for_web(city["city"]["web_port"], WEB_START_S)
        log.info("city portal at %s/", portal)
        log.info(
            "city admin at %s/admin: sign in as %s, password %s", portal, ADMIN, admin_password
        )
        for office in offices:
            log.info("branch %s (%s): portal at %s/", office.site, office.name, office.url)
        log.info("a city of %d branches is open; press Ctrl+C to close it", branches)
        with stop_on_signals() as stop:
            stop.wait()


def start_city_broker(city: dict[str, Any], store: CityStore, stack: ExitStack) -> Mosquitto:
    """Write the city broker's files (every branch's account) and start it.

    ``city`` is the city's settings (:func:`city_settings`); the broker stops with
    ``stack``. It runs as this process's user when that is root (its files stay ours).
    """
    data = Path(city["data"]["dir"])
    path = data / "city.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(path, tomli_w.dumps(city))
    settings = load_settings(path, env={})
    files = write_city_broker_config(
        settings, store, directory=settings.broker.dir, user=own_files_user()
    )
    broker = Mosquitto(files.config, settings.broker.port)
    broker.start()
    stack.callback(broker.stop)
    return broker
