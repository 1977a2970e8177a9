"""The throwaway PostgreSQL cluster the store tests fall back on, started for real."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from city.postgres_cluster import find_bindir, throwaway_cluster
from hub.store import Store


@pytest.mark.postgres  # where PostgreSQL must be tested, a skip fails
def test_a_throwaway_cluster_serves_the_store_and_is_gone_afterwards() -> None:
    if find_bindir() is None:
        pytest.skip("PostgreSQL is not installed (Debian package 'postgresql')")
    with throwaway_cluster() as url:
        parsed = make_url(url)
        assert parsed.host == "127.0.0.1"
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == "postgres"
                directory = Path(conn.execute(text("SHOW data_directory")).scalar_one()).parent
        finally:
            engine.dispose()
        with Store(url) as store:
            store.upgrade()
            assert store.count_tickets() == 0
        assert directory.is_dir()
    assert not directory.exists()
    with socket.socket() as probe:  # the server has stopped: nothing listens there
        assert probe.connect_ex(("127.0.0.1", parsed.port or 5432)) != 0
