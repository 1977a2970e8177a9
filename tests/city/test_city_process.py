"""The city's consumer in a process of its own: asked through its pipe, started again if it dies."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import date

import pytest
from city_helpers import CityBroker, TestBranch, batch

from city.process import ConsumerProcess
from city.store import CityStore

pytestmark = pytest.mark.postgres

START_S = 60.0
"""A spawned interpreter imports the consumer first: on a loaded machine that takes a while."""


def test_the_consumer_process_resyncs_when_asked_and_is_started_again_when_it_dies(
    city_broker: CityBroker, add_branch: Callable[[str], TestBranch], city_store: CityStore
) -> None:
    first = add_branch("a")
    consumer = ConsumerProcess(city_broker.settings).start()
    try:
        assert consumer.started.wait(START_S), "the consumer's process did not report"
        first.wait_for_ack(0, timeout=START_S)
        # A branch added afterwards learns it may start once the parent asks for a resync.
        second = add_branch("b")
        consumer.resync()
        second.wait_for_ack(0, timeout=START_S)
        first.send(batch("a", 1, 10))
        first.wait_for_ack(10)
        killed = consumer.pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        # Sent while no consumer runs: its persistent session keeps it for the next one.
        first.send(batch("a", 11, 20))
        first.wait_for_ack(20, timeout=START_S)
        assert consumer.pid != killed
    finally:
        consumer.stop()
    held = [e.seq for e in city_store.events(date(2026, 1, 1), date(2027, 1, 1), sites=["a"])]
    assert held == list(range(1, 21))
