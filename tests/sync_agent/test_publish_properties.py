"""PublishProperties goes on the wire exactly as paho's own Properties would."""

from __future__ import annotations

import itertools

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sync_agent.properties import PublishProperties

EXPIRIES = (None, 0, 30, 2**32 - 1)
TOPICS = (None, "", "hub/reply/counter-3", "odpoveď/ľščť/" + "x" * 300)
CORRELATIONS = (None, b"", b"\x00\xff" * 8, bytes(range(256)) * 3)


def _paho(expiry_s: int | None, topic: str | None, correlation: bytes | None) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if topic is not None:
        properties.ResponseTopic = topic
    if correlation is not None:
        properties.CorrelationData = correlation
    if expiry_s is not None:
        properties.MessageExpiryInterval = expiry_s
    return properties


@pytest.mark.parametrize(
    ("expiry_s", "topic", "correlation"), list(itertools.product(EXPIRIES, TOPICS, CORRELATIONS))
)
def test_packs_reads_and_unpacks_as_paho(
    expiry_s: int | None, topic: str | None, correlation: bytes | None
) -> None:
    ours = PublishProperties(expiry_s=expiry_s, response_topic=topic, correlation=correlation)
    theirs = _paho(expiry_s, topic, correlation)

    assert ours.pack() == theirs.pack()
    assert str(ours) == str(theirs)
    assert ours.json() == theirs.json()
    assert ours.isEmpty() == theirs.isEmpty()
    unpacked = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    unpacked.unpack(ours.pack())
    assert unpacked.json() == theirs.json()


def test_is_packed_once_and_not_changed_after() -> None:
    properties = PublishProperties(expiry_s=5)

    with pytest.raises(AttributeError, match="packed once"):
        properties.MessageExpiryInterval = 6
    assert properties.pack() == _paho(5, None, None).pack()


def test_instances_share_paho_tables_without_sharing_values() -> None:
    first = PublishProperties(response_topic="a")
    second = PublishProperties(correlation=b"b")

    assert first.names is second.names
    assert not hasattr(first, "CorrelationData")
    assert not hasattr(second, "ResponseTopic")
