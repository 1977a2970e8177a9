"""A PostgreSQL failover under the city's consumer: a real primary and streaming standby.

The primary holds rows the standby never got (acknowledged to the branch); it crashes
mid-stream and the standby is promoted. The consumer, on a libpq multi-host URL with
``target_session_attrs=read-write``, reconnects to the promoted standby, publishes the
ack of what the standby holds (lower than the branch last heard), and the branch sends
the rest again: nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from city_helpers import CityBroker, ResendingBranch, TestBranch, city_settings
from office_helpers import require_mosquitto
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from city.consumer import CityConsumer
from city.live import LiveCity
from city.postgres_cluster import ClusterError, Server, primary_and_standby
from city.store import CityStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[tuple[Server, Server]]:
    try:
        with primary_and_standby() as servers:
            yield servers
    except ClusterError as exc:
        pytest.skip(f"no PostgreSQL primary and standby: {exc}")


def sql(server: Server, *statements: str, database: str = "postgres") -> None:
    url = server.url.rsplit("/", 1)[0] + f"/{database}"
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def test_a_failover_loses_nothing_and_stores_nothing_twice(
    cluster: tuple[Server, Server], tmp_path: Path
) -> None:
    require_mosquitto()
    primary, standby = cluster
    # Until the standby is stopped, a commit returns once the standby has applied it:
    # the standby then holds exactly rows 1..100.
    sql(
        primary,
        "CREATE DATABASE city",
        "ALTER DATABASE city SET synchronous_commit = remote_apply",
        "ALTER SYSTEM SET synchronous_standby_names = '*'",
        "SELECT pg_reload_conf()",
    )
    url = (
        f"postgresql+psycopg://postgres@/city?host=127.0.0.1:{primary.port}"
        f"&host=127.0.0.1:{standby.port}&target_session_attrs=read-write"
    )
    store = CityStore(url)
    store.upgrade()
    _, password = store.add_branch("a", name="A", address="x")
    settings = city_settings(url, tmp_path / "broker")
    broker = CityBroker(settings, store, tmp_path / "broker")
    broker.start()
    consumer = CityConsumer(settings.city, CityStore(url), LiveCity()).start()
    branch = TestBranch(broker, "a", password)
    sender = ResendingBranch(branch)
    try:
        sender.have(100)
        branch.wait_for_ack(100)
        sql(primary, "ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()")
        standby.stop()
        sender.have(200)
        branch.wait_for_ack(200)  # on the primary only
        sender.have(300)
        primary.stop("immediate")  # a crash, mid-stream
        standby.start()
        standby.promote()
        acks = branch.wait_for_ack(300, timeout=90)
    finally:
        sender.stop()
        branch.stop()
        consumer.stop()
        consumer.store.close()
        assert broker.process is not None
        broker.process.stop()
    # The ack fell back to what the promoted standby held, and the branch resent from there.
    after_200 = acks[acks.index(200) :]
    assert 100 in after_200, acks
    assert sender.resends >= 1
    events = store.events(date(2026, 1, 1), date(2027, 1, 1), sites=["a"])
    store.close()
    assert [e.seq for e in events] == list(range(1, 301))
