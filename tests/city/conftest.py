"""Fixtures of the city's tests: a fresh PostgreSQL database per test, the city's store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from city_helpers import fresh_database

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
