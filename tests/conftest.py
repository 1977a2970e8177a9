"""Shared pytest fixtures."""

from __future__ import annotations

import functools
import os
import re
import socket
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from postgres_cluster import ClusterError, throwaway_cluster
from process_helpers import Process
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from common.settings import (
    DataSettings,
    MqttSettings,
    Settings,
    SiteSettings,
    WebSettings,
)
from hub.app import open_queue, seed_demo, serve_web, start_bridge, web_app
from hub.bridge import HubBridge
from hub.broker import Mosquitto, local_broker
from hub.service import QueueService
from hub.store import Store, sqlite_url
from hub.users import Users
from hub.web.server import WebServer
from poradovnik.cli import main
from sync_agent.broker_accounts import Account, Role
from sync_agent.link import DeviceLink

# =============================================================================
# Programs the tests start, and the default ports they must not rely on
# =============================================================================

_OUTPUTS = pytest.StashKey[list[tuple[str, Callable[[], str]]]]()
"""What the servers a test started have said: name, and how to read it."""

HELD_PORTS = (8080, 1883)
"""The hub's default web port and MQTT's: held for the whole run (when free), so a
test server that does not ask for a free port fails here as it would on a busy machine."""


@pytest.fixture(scope="session", autouse=True)
def default_ports_taken() -> Iterator[tuple[int, ...]]:
    """Bind 127.0.0.1 on :data:`HELD_PORTS` for the session; the ports held by us.

    The sockets do not listen: a server cannot bind there, and a client that
    connects there by mistake is refused at once. A port some other program holds
    already is just as taken.
    """
    held: list[socket.socket] = []
    for port in HELD_PORTS:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        held.append(sock)
    yield tuple(sock.getsockname()[1] for sock in held)
    for sock in held:
        sock.close()


def report_output(node: pytest.Item, name: str, read: Callable[[], str]) -> None:
    """Show what ``read`` returns (a server's output) in the report, if the test fails."""
    node.stash.setdefault(_OUTPUTS, []).append((name, read))


@pytest.fixture
def processes(request: pytest.FixtureRequest) -> Iterator[Callable[..., Process]]:
    """Start programs (see :class:`process_helpers.Process`); all are killed afterwards.

    A failed test's report shows the output of every program it started.
    """
    started: list[Process] = []

    def start(*args: Any, **options: Any) -> Process:
        process = Process(*args, **options)
        started.append(process)
        report_output(request.node, f"output of {process.name}", process.describe)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Add the output of the programs a failed test started to its report; fail a
    PostgreSQL test that skipped where PostgreSQL must be tested."""
    report: pytest.TestReport = yield
    if report.skipped and item.get_closest_marker("postgres") and postgres_required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"a PostgreSQL test may not skip here (CI=true or {POSTGRES_REQUIRED_ENV}=1): {reason}"
        )
    if report.failed:
        for name, read in item.stash.get(_OUTPUTS, []):
            report.sections.append((name, read()))
    return report


# =============================================================================
# Store fixtures (hub.store): a database URL per backend, and stores
# =============================================================================

POSTGRES_URL_ENV = "PORADOVNIK_TEST_POSTGRES_URL"
POSTGRES_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_REQUIRED_ENV = "PORADOVNIK_TEST_POSTGRES_REQUIRED"


def postgres_required() -> bool:
    """Whether a PostgreSQL test must run rather than skip: under CI (``CI=true``) or
    ``scripts/test`` (``PORADOVNIK_TEST_POSTGRES_REQUIRED=1``)."""
    ci = os.environ.get("CI", "").lower() in ("true", "1")
    return ci or os.environ.get(POSTGRES_REQUIRED_ENV, "") == "1"


@functools.cache
def _postgres_unreachable(url: str) -> str | None:
    """Why the server at ``url`` cannot be used, or ``None`` when it answers (cached)."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means: skip, and say why
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The PostgreSQL server of this run (each test gets its own schema in it).

    The one ``PORADOVNIK_TEST_POSTGRES_URL`` names; without it, the one at the
    default URL if it answers, else a throwaway cluster started for the run
    (``postgres_cluster.py``). Skips with the reason when there is none (fails
    instead where PostgreSQL must be tested: see :func:`postgres_required`).
    """
    configured = os.environ.get(POSTGRES_URL_ENV)
    base = configured or POSTGRES_URL_DEFAULT
    reason = _postgres_unreachable(base)
    if reason is None:
        yield base
        return
    if configured:
        pytest.skip(f"PostgreSQL not reachable at {_shown(base)} ({POSTGRES_URL_ENV}): {reason}")
    try:
        with throwaway_cluster() as url:
            yield url
    except ClusterError as exc:
        pytest.skip(
            f"PostgreSQL not reachable at {_shown(base)} ({reason}), and no throwaway "
            f"cluster: {exc}"
        )


def _postgres_schema_url(base: str) -> Iterator[str]:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file (in a directory not yet created), or a fresh
    PostgreSQL schema (dropped afterwards; see ``postgres_server``)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "hub" / "hub.db")
    else:
        yield from _postgres_schema_url(request.getfixturevalue("postgres_server"))


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Open (and upgrade) more stores on ``store_url``; all are closed afterwards."""
    opened: list[Store] = []

    def open_() -> Store:
        store = Store(store_url)
        opened.append(store)
        store.upgrade()
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    """An upgraded, empty store on each backend."""
    return open_store()


# =============================================================================
# MQTT fixtures: a real Mosquitto with the hub's generated configuration, the hub
# on it, and devices with their own credentials
# =============================================================================

ACCOUNTS: tuple[tuple[str, Role, dict[str, Any]], ...] = (
    ("hub", "hub", {"device_id": "hub"}),
    ("kiosk-k1", "kiosk", {"device_id": "k1"}),
    ("kiosk-k2", "kiosk", {"device_id": "k2"}),
    ("display-d1", "display", {"device_id": "d1"}),
    ("panel-p1", "counter", {"device_id": "p1", "counters": ("1", "2")}),
    ("panel-p2", "counter", {"device_id": "p2", "counters": ("3", "4", "5")}),
    ("imesto", "backoffice", {}),
)
"""Who the test office's broker lets in: user name, role, and what the account is for."""


@dataclass
class OfficeBroker:
    """A running Mosquitto of the test office, with the password of every account."""

    process: Mosquitto
    passwords: dict[str, str]
    accounts: tuple[Account, ...] = ()
    """The accounts, as the hub's store keeps them (the hub answers devices by them)."""
    site: str = "office"

    @property
    def port(self) -> int:
        return self.process.port

    def mqtt(self, username: str) -> MqttSettings:
        """The ``[mqtt]`` settings a device with this account would have."""
        return MqttSettings(
            host="127.0.0.1",
            port=self.port,
            username=username,
            password=SecretStr(self.passwords[username]),
        )


@contextmanager
def office_broker(directory: Path) -> Iterator[OfficeBroker]:
    """A real Mosquitto on a free port of 127.0.0.1, configured as the hub generates it."""
    with local_broker(directory, "office", ACCOUNTS) as running:
        yield OfficeBroker(
            running.process,
            {
                name: mqtt.password.get_secret_value()
                for name, mqtt in running.accounts.items()
                if mqtt.password is not None
            },
            running.logins,
        )


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OfficeBroker]:
    """The test office's broker (:func:`office_broker`), for one test.

    Its log is in the report of a failed test.
    """
    with office_broker(tmp_path / "broker") as running:
        report_output(request.node, "log of mosquitto", lambda: running.process.tail(60))
        yield running


def hub_settings(broker: OfficeBroker, data_dir: Path) -> Settings:
    """Settings of a hub on the test broker, keeping its database in ``data_dir``."""
    return Settings(
        role="hub",
        site=SiteSettings(id=broker.site),
        mqtt=broker.mqtt("hub"),
        data=DataSettings(dir=data_dir),
    )


@dataclass
class RunningHub:
    """The hub's queue and bridge, connected to the test broker."""

    queue: QueueService
    bridge: HubBridge
    link: DeviceLink

    def stop(self) -> None:
        self.link.stop()
        self.queue.store.close()


@pytest.fixture
def start_hub(broker: OfficeBroker, tmp_path: Path) -> Iterator[Callable[[], RunningHub]]:
    """Start the hub (again) on the test broker and its database in tmp_path."""
    running: list[RunningHub] = []

    def start() -> RunningHub:
        settings = hub_settings(broker, tmp_path / "hub")
        queue = open_queue(settings)
        seed_demo(queue)
        for account in broker.accounts:
            queue.store.save_account(account, at=datetime.now(UTC))
        bridge, link = start_bridge(settings, queue)
        assert link.connection.subscribed.wait(10), "the hub did not subscribe at the broker"
        hub = RunningHub(queue, bridge, link)
        running.append(hub)
        return hub

    yield start
    for hub in running:
        hub.stop()


@pytest.fixture
def hub(start_hub: Callable[[], RunningHub]) -> RunningHub:
    """The hub, running on the test broker with the demo office."""
    return start_hub()


@pytest.fixture
def device(broker: OfficeBroker, tmp_path: Path) -> Iterator[Callable[..., DeviceLink]]:
    """Connect devices by account name; each has a durable outbox in tmp_path."""
    links: list[DeviceLink] = []

    def connect(username: str, *, role: str | None = None, start: bool = True) -> DeviceLink:
        _, account_role, extra = next(a for a in ACCOUNTS if a[0] == username)
        device_id = str(extra.get("device_id", username))
        link = DeviceLink(
            mqtt=broker.mqtt(username),
            site=broker.site,
            device_id=device_id,
            role=role or account_role,
            outbox_path=tmp_path / "devices" / f"{device_id}.sqlite3",
            reply_timeout_s=2.0,
            backoff_base_s=0.05,
            backoff_cap_s=0.5,
        )
        links.append(link)
        if start:
            link.start()
            assert link.connected.wait(10), f"{username} did not connect"
        return link

    yield connect
    for link in links:
        link.stop()


# =============================================================================
# Web fixtures (hub.web): the Flask app on a real queue and store, its
# test client, the command line on the same database, and the real server
# =============================================================================

ADMIN_PASSWORD = "correct horse battery"


def web_settings_for(data_dir: Path, **web: Any) -> Settings:
    """Settings of a hub whose web side runs on 127.0.0.1 in plain HTTP."""
    return Settings(
        role="hub",
        data=DataSettings(dir=data_dir),
        web=WebSettings(host="127.0.0.1", secure_cookies=False, **web),
    )


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    """The web tests' hub settings (SQLite in tmp_path)."""
    return web_settings_for(tmp_path / "hub", lookup_limit="5/minute")


@pytest.fixture
def web_queue(web_settings: Settings) -> Iterator[QueueService]:
    """The demo office's queue for the web tests."""
    queue = open_queue(web_settings)
    seed_demo(queue)
    yield queue
    queue.store.close()


@pytest.fixture
def app(web_settings: Settings, web_queue: QueueService) -> Flask:
    """The web app (CSRF, rate limits and all), as the hub builds it."""
    return web_app(web_settings, web_queue, config={"TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser without JavaScript: Flask's test client."""
    return app.test_client()


@pytest.fixture
def runner(web_settings: Settings, tmp_path: Path) -> Callable[..., Result]:
    """Run ``poradovnik ...`` against the web tests' hub database."""
    config = tmp_path / "hub.toml"
    config.write_text(f'role = "hub"\n[data]\ndir = "{web_settings.data.dir.as_posix()}"\n')
    cli = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return cli.invoke(main, ["--config", str(config), *args], input=input)

    return run


def csrf_token(client: FlaskClient, url: str) -> str:
    """The CSRF token of the form on page ``url``."""
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, f"no CSRF token on {url}"
    return match.group(1)


@pytest.fixture
def admin(app: Flask, client: FlaskClient, web_queue: QueueService) -> FlaskClient:
    """The test client signed in as the admin ``admin``."""
    Users(web_queue.store).add("admin", ADMIN_PASSWORD, "admin")
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        "/admin/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


@pytest.fixture
def web_server(web_settings: Settings, web_queue: QueueService) -> Iterator[WebServer]:
    """The real web server (uvicorn, thread pool, event streams) on a free port."""
    server = serve_web(web_settings, web_queue, port=0)
    yield server
    server.stop()
