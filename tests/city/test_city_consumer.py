"""The city's consumer with a real Mosquitto and PostgreSQL: history stored exactly once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from city_helpers import CityBroker, TestBranch, batch, wait_until
from sqlalchemy import text

from city.consumer import CityConsumer
from city.live import LiveCity
from city.services import CityServices
from city.store import CityStore
from sync_agent.city_protocol import Catalogue, CatalogueService, decode_city
from sync_agent.protocol import DeviceStatus

pytestmark = pytest.mark.postgres

AddBranch = Callable[[str], TestBranch]


def stored(store: CityStore, site: str) -> list[int]:
    return [e.seq for e in store.events(date(2026, 1, 1), date(2027, 1, 1), sites=[site])]


def joined(consumer: CityConsumer, add_branch: AddBranch, site: str) -> TestBranch:
    """Branch ``site``, added to the city, once the consumer took it in (its first ack)."""
    branch = add_branch(site)
    consumer.resync()
    branch.wait_for_ack(0)
    return branch


def test_batches_are_stored_once_and_acked_after_commit(
    consumer: CityConsumer, add_branch: AddBranch, city_store: CityStore
) -> None:
    consumer.resync()  # the branch was added after the consumer started
    branch = add_branch("a")
    branch.wait_for_ack(0)
    branch.send(batch("a", 1, 50))
    branch.wait_for_ack(50)
    branch.send(batch("a", 1, 50))  # a duplicate
    branch.send(batch("a", 40, 80))  # an overlapping resend
    branch.wait_for_ack(80)
    assert stored(city_store, "a") == list(range(1, 81))


def test_a_gap_is_refused_and_the_old_ack_published_again(
    consumer: CityConsumer, add_branch: AddBranch, city_store: CityStore
) -> None:
    branch = joined(consumer, add_branch, "a")
    branch.send(batch("a", 1, 10))
    branch.wait_for_ack(10)
    before = branch.ack_count()
    branch.send(batch("a", 21, 30))  # 11..20 are missing, and the branch still has them
    assert branch.wait_for_acks(before + 1)[-1] == 10
    branch.send(batch("a", 11, 30))
    branch.wait_for_ack(30)
    assert stored(city_store, "a") == list(range(1, 31))


def test_a_branch_joining_with_pruned_history_starts_at_its_first_available(
    consumer: CityConsumer, add_branch: AddBranch, city_store: CityStore
) -> None:
    branch = joined(consumer, add_branch, "b")
    branch.send(batch("b", 500, 520, first_available=500))
    branch.wait_for_ack(520)
    assert stored(city_store, "b") == list(range(500, 521))


def test_an_unknown_branch_is_refused(
    consumer: CityConsumer, add_branch: AddBranch, city_store: CityStore
) -> None:
    branch = joined(consumer, add_branch, "a")
    city_store.remove_branch("a")  # still connected, but no longer the city's
    branch.send(batch("a", 1, 5))
    branch.send(batch("a", 1, 5))
    # The consumer goes on: a branch added later is served.
    other = joined(consumer, add_branch, "c")
    other.send(batch("c", 1, 3))
    other.wait_for_ack(3)
    assert stored(city_store, "a") == []


def test_a_restarted_consumer_publishes_every_ack_again(
    city_broker: CityBroker, add_branch: AddBranch, city_store: CityStore
) -> None:
    first = add_branch("a")
    second = add_branch("b")
    consumer = CityConsumer(city_broker.settings.city, CityStore(city_store.url), LiveCity())
    consumer.start()
    assert consumer.synced.wait(10)
    first.send(batch("a", 1, 7))
    first.wait_for_ack(7)
    consumer.stop()
    consumer.store.close()
    # Sent while the consumer is away: its persistent session keeps the batch.
    second.send(batch("b", 1, 4))
    before = first.ack_count()
    again = CityConsumer(city_broker.settings.city, CityStore(city_store.url), LiveCity())
    again.start()
    try:
        assert first.wait_for_acks(before + 1)[-1] == 7
        second.wait_for_ack(4)
    finally:
        again.stop()
        again.store.close()
    assert stored(city_store, "b") == [1, 2, 3, 4]


def test_a_full_backlog_holds_the_broker_back_and_loses_nothing(
    city_broker: CityBroker, add_branch: AddBranch, city_store: CityStore
) -> None:
    settings = city_broker.settings.city.model_copy(update={"backlog": 10})
    consumer = CityConsumer(settings, CityStore(city_store.url), LiveCity()).start()
    try:
        branch = joined(consumer, add_branch, "a")
        with city_store.db.begin() as conn:
            # The database stalls: the consumer's transaction waits for the lock.
            conn.execute(text("LOCK TABLE branch_events IN ACCESS EXCLUSIVE MODE"))
            for seq in range(1, 101):
                branch.send(batch("a", seq, seq))
            wait_until(lambda: consumer.waiting >= settings.backlog)
        # No batch was dropped for the branch to resend: every one is stored in turn.
        branch.wait_for_ack(100)
    finally:
        consumer.stop()
        consumer.store.close()
    assert stored(city_store, "a") == list(range(1, 101))


def test_the_catalogue_reaches_the_branches_that_take_it(
    consumer: CityConsumer, add_branch: AddBranch, city_store: CityStore, city_broker: CityBroker
) -> None:
    taking, other = add_branch("a"), add_branch("b")
    for branch in (taking, other):
        branch.watch(branch.topics.catalogue)
    services = CityServices(city_broker.settings, city_store, consumer.live, publisher=consumer)
    city_store.set_catalogue_branch("a", takes=True)
    services.branches_changed()
    service = CatalogueService(code="doklady", prefix="D", names={"sk": "Doklady"})
    services.set_catalogue([service])
    while (payload := taking.wait_for_message(taking.topics.catalogue)) == b"":
        pass  # cleared before the first catalogue was stored
    catalogue = decode_city(Catalogue, payload)
    assert catalogue.version == 1
    assert [s.code for s in catalogue.services] == ["doklady"]
    assert other.wait_for_message(other.topics.catalogue) == b""  # cleared, never set


def test_the_branches_live_state_is_kept(consumer: CityConsumer, add_branch: AddBranch) -> None:
    branch = add_branch("a")
    version = consumer.live.version
    status = DeviceStatus(state="online", role="hub", at=datetime.now(UTC))
    topic = "poradovnik/v1/a/device/hub/status"
    assert branch.connection.publish(topic, status.encode(), retain=True)
    consumer.live.wait_for(version, timeout=10)
    live = consumer.live.branch("a")
    assert live is not None
    assert live.hub_online
    # Another branch's topic is the ACL's to refuse: nothing of site b arrives.
    branch.connection.publish("poradovnik/v1/b/device/hub/status", status.encode(), retain=True)
    branch.send(batch("a", 1, 1))
    branch.wait_for_ack(1)
    assert consumer.live.branch("b") is None
