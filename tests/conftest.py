"""Fixtures shared by the tests of every role; each role's own are in its directory.

The tests are sorted by role: ``hub/``, ``kiosk/``, ``display/``, ``counter_terminal/``,
``sync_agent/``, ``common/`` (settings, logging, texts, speech, the command line) and
``appliance/`` (systemd units, the image's install and storage, updates, the watchdog,
shell scripts). Each directory has a ``conftest.py`` with the fixtures only its tests
use. This one keeps the shared ones: the default ports held, the programs a test
starts, and the test office's broker, hub and devices.

How the test modules are imported: pytest's default ``prepend`` mode, with no
``__init__.py`` in ``tests/`` or below. Each test file's directory goes on
``sys.path``, and so does ``tests/`` (for this file). So:

* Test files' names are unique across directories (each is a top-level module).
* Tests import shared helpers from plain modules here (``office_helpers``,
  ``process_helpers``, ``display_helpers``, ...) or beside them in their directory,
  never from a ``conftest.py`` (there are several) and never from a test module of
  another directory.
* ``tests/hub`` and the others, on ``sys.path`` as directories without
  ``__init__.py``, would be found as namespace packages ``hub``, ``display`` ... before
  the installed packages; pyproject's ``pythonpath = ["."]`` puts the checkout's
  real packages ahead of them.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
from collections.abc import Callable, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from office_helpers import ACCOUNTS, OfficeBroker, RunningHub, hub_settings, office_broker
from process_helpers import Process
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from city import store as city_store_module
from city.postgres_cluster import ClusterError, throwaway_cluster
from common.files import create_private_file
from common.settings import Settings
from hub import users as hub_users_module
from hub.app import open_queue, seed_demo, start_bridge
from hub.store import Store, sqlite_url
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


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[PasswordHasher]:
    """Hash the passwords of this process's hub and city users with argon2id at its
    lowest cost; the hasher used.

    Signing in costs the product's argon2id a tenth of a second for each hash and each
    check, and most web tests sign someone in. The hashes are argon2id all the same,
    checked and rehashed as the product does; programs the tests start hash at the
    product's cost.
    """
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hub_users_module, "hasher", cheap)
        patch.setattr(city_store_module, "hasher", cheap)
        yield cheap


def report_output(node: pytest.Item, name: str, read: Callable[[], str]) -> None:
    """Show what ``read`` returns (a server's output) in the report, if the test fails."""
    node.stash.setdefault(_OUTPUTS, []).append((name, read))


@pytest.fixture
def headless_pygame(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """pygame's display and fonts on SDL without a screen or a sound card (drawing into
    memory), shut down after the test."""
    import pygame

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    pygame.display.init()
    pygame.font.init()
    yield
    pygame.quit()


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


POSTGRES_REQUIRED_ENV = "PORADOVNIK_TEST_POSTGRES_REQUIRED"


def postgres_required() -> bool:
    """Whether a PostgreSQL test must run rather than skip: under CI (``CI=true``) or
    ``scripts/test`` (``PORADOVNIK_TEST_POSTGRES_REQUIRED=1``)."""
    ci = os.environ.get("CI", "").lower() in ("true", "1")
    return ci or os.environ.get(POSTGRES_REQUIRED_ENV, "") == "1"


# =============================================================================
# PostgreSQL: the server of this run (the hub's and the city's tests make their own
# schemas or databases in it)
# =============================================================================

POSTGRES_URL_ENV = "PORADOVNIK_TEST_POSTGRES_URL"
POSTGRES_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


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
    (:mod:`city.postgres_cluster`). Skips with the reason when there is none (fails
    instead where PostgreSQL must be tested: see ``postgres_required`` in
    ``tests/conftest.py``).
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


# =============================================================================
# The hub's SQLite database: made at the newest schema once, copied for each hub
# =============================================================================


@pytest.fixture(scope="session")
def _upgraded_hub_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty hub database at the newest schema, migrated once for the run."""
    path = tmp_path_factory.mktemp("hub-schema") / "hub.sqlite3"
    with Store(sqlite_url(path)) as store:
        store.upgrade()
    return path


@pytest.fixture(scope="session")
def new_hub_database(_upgraded_hub_database: Path) -> Callable[[Settings], None]:
    """Give a hub's settings a new SQLite database at the newest schema, unless they
    name one that exists (a hub started again) or another database.

    A copy of a database migrated once for the run: the hub's upgrade at start then
    finds nothing to do, where migrating a new database for every test's hub costs
    more than many a test. The migrations themselves are tested on their own
    (``tests/hub/test_store.py``).
    """

    def give(settings: Settings) -> None:
        url = make_url(settings.database_url)
        if url.get_backend_name() != "sqlite" or url.database is None:
            return
        target = Path(url.database)
        if target.exists():
            return
        # As the store makes them: an owner-only folder and file.
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_private_file(target)
        shutil.copyfile(_upgraded_hub_database, target)

    return give


# =============================================================================
# MQTT fixtures: a real Mosquitto with the hub's generated configuration, the hub
# on it, and devices with their own credentials
# =============================================================================


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OfficeBroker]:
    """The test office's broker (:func:`office_helpers.office_broker`), for one test.

    A missing Mosquitto fails the test with the command that installs it. Its log
    is in the report of a failed test.
    """
    with office_broker(tmp_path / "broker") as running:
        report_output(request.node, "log of mosquitto", lambda: running.process.tail(60))
        yield running


@pytest.fixture
def start_hub(
    broker: OfficeBroker, tmp_path: Path, new_hub_database: Callable[[Settings], None]
) -> Iterator[Callable[[], RunningHub]]:
    """Start the hub (again) on the test broker and its database in tmp_path."""
    running: list[RunningHub] = []

    def start() -> RunningHub:
        settings = hub_settings(broker, tmp_path / "hub")
        new_hub_database(settings)
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
