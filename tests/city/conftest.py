"""Fixtures of the city's tests: a fresh PostgreSQL database per test, the city's store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from city_helpers import CityBroker, TestBranch, city_settings, fresh_database
from office_helpers import require_mosquitto

from city.consumer import CityConsumer
from city.live import LiveCity
from city.store import CityStore


@pytest.fixture
def city_url(postgres_server: str) -> Iterator[str]:
    """The URL of an empty database of its own (dropped afterwards)."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
def city_store(city_url: str) -> Iterator[CityStore]:
    """The city's store on a fresh database, upgraded."""
    with CityStore(city_url) as store:
        store.upgrade()
        yield store


@pytest.fixture
def city_broker(city_store: CityStore, tmp_path: Path) -> Iterator[CityBroker]:
    """The city's Mosquitto (no branch yet: :func:`add_branch` adds them and reloads it)."""
    require_mosquitto()
    settings = city_settings(city_store.url, tmp_path / "broker")
    broker = CityBroker(settings, city_store, tmp_path / "broker")
    broker.start()
    assert broker.process is not None
    yield broker
    broker.process.stop()


@pytest.fixture
def add_branch(city_broker: CityBroker) -> Iterator[Callable[[str], TestBranch]]:
    """Add a branch to the city (database, broker files) and connect it as a test branch."""
    started: list[TestBranch] = []

    def add(site: str) -> TestBranch:
        _branch, password = city_broker.store.add_branch(site, name=site, address="x")
        city_broker.write()
        # The reload happens in the broker's own time: log in until it knows the account.
        branch = TestBranch(city_broker, site, password)
        started.append(branch)
        return branch

    yield add
    for branch in started:
        branch.stop()


@pytest.fixture
def consumer(city_broker: CityBroker) -> Iterator[CityConsumer]:
    """The city's consumer on the city's broker and database, running."""
    store = CityStore(city_broker.store.url)
    running = CityConsumer(city_broker.settings.city, store, LiveCity()).start()
    assert running.connection.subscribed.wait(10), "the consumer did not connect"
    yield running
    running.stop()
    store.close()
