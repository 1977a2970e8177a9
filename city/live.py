"""The live state of every branch, as their brokers' bridges bring it to the city.

Each branch's retained queue, counter and device state (and its calls) arrive on the
city's broker under the branch's site (:data:`sync_agent.city_protocol.BRIDGED_OUT`).
:class:`LiveCity` keeps the latest of each, per branch, for the city's dashboard and
portal: it is fed every such message with :meth:`LiveCity.apply` and read with
:meth:`LiveCity.branches`. It holds nothing the database must keep: after a restart the
brokers' retained messages fill it again.

Every input is bounded: at most :data:`MAX_BRANCHES` branches and :data:`MAX_ITEMS` of
each kind per branch are kept; what is beyond is refused with a :class:`ProtocolError`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final, TypeVar

from common.identity import HUB_DEVICE_ID
from common.logthrottle import ThrottledLog
from common.settings import CitySettings
from sync_agent.city_protocol import CatalogueApplied, decode_city, site_of
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.protocol import (
    ROOT,
    Call,
    CounterState,
    DeviceHealth,
    DeviceStatus,
    ProtocolError,
    QueueState,
    decode,
)

log = logging.getLogger(__name__)

LIVE_CLIENT_ID: Final = "poradovnik-city-live"
"""The MQTT client id of the web pages' process's :class:`LiveFeed` (a clean session)."""

MAX_BRANCHES: Final = 1000
"""Most branches the city keeps live state of."""

MAX_ITEMS: Final = 512
"""Most queues, counters or devices kept per branch."""

RECENT_CALLS: Final = 20
"""How many of a branch's latest calls are kept."""

LOW_PAPER: Final = frozenset({"paper_near_end", "paper_out"})
"""Printer states that the city's device page highlights."""

SUBSCRIPTIONS: Final[tuple[str, ...]] = (
    f"{ROOT}/+/queue/+",
    f"{ROOT}/+/counter/+/state",
    f"{ROOT}/+/calls",
    f"{ROOT}/+/device/+/status",
    f"{ROOT}/+/device/+/health",
    f"{ROOT}/+/city/catalogue/applied",
)
"""The topic filters whose messages :meth:`LiveCity.apply` takes."""


@dataclass(frozen=True, slots=True)
class DeviceView:
    """What the city knows of one device of a branch (the hub is one of them)."""

    id: str
    status: DeviceStatus | None = None
    health: DeviceHealth | None = None

    @property
    def online(self) -> bool:
        """Whether the device said it is online (its last will says otherwise)."""
        return self.status is not None and self.status.state == "online"

    @property
    def paper_low(self) -> bool:
        """Whether a printer of the device is near its end or out of paper."""
        return self.health is not None and any(
            part.state in LOW_PAPER for part in self.health.parts.values()
        )


@dataclass(frozen=True, slots=True)
class BranchLive:
    """One branch's live state: an immutable snapshot."""

    site: str
    queues: Mapping[str, QueueState] = field(default_factory=dict)
    counters: Mapping[str, CounterState] = field(default_factory=dict)
    devices: Mapping[str, DeviceView] = field(default_factory=dict)
    calls: tuple[Call, ...] = ()
    """The latest calls, newest first."""
    catalogue: CatalogueApplied | None = None
    """What the branch last said it did with the city's catalogue."""
    updated_at: datetime | None = None
    """When the city last heard of the branch."""

    @property
    def waiting(self) -> int:
        """Citizens waiting in every service."""
        return sum(queue.waiting for queue in self.queues.values())

    @property
    def hub_online(self) -> bool:
        """Whether the branch's hub is online (its retained status says so)."""
        hub = self.devices.get(HUB_DEVICE_ID)
        return hub is not None and hub.online


T = TypeVar("T")


class LiveCity:
    """The live state of every branch; thread-safe, fed by the city's MQTT client."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._branches: dict[str, BranchLive] = {}
        self._calls: dict[str, deque[Call]] = {}
        self._version = 0

    @property
    def version(self) -> int:
        """Grows with every change (a page or a test waits for it to move)."""
        return self._version

    def wait_for(self, version: int, timeout: float) -> int:
        """Wait until :attr:`version` is beyond ``version`` or ``timeout`` passes; return it."""
        with self._lock:
            self._lock.wait_for(lambda: self._version > version, timeout)
            return self._version

    def branches(self) -> dict[str, BranchLive]:
        """Every branch heard of, by site."""
        with self._lock:
            return dict(self._branches)

    def branch(self, site: str) -> BranchLive | None:
        """One branch's state, or ``None`` if the city has heard nothing of it."""
        with self._lock:
            return self._branches.get(site)

    def apply(self, topic: str, payload: bytes, *, now: datetime | None = None) -> None:
        """Take one message of :data:`SUBSCRIPTIONS`; an empty payload clears a retained item.

        Raises :class:`ProtocolError` for a topic or payload that cannot be used, or for
        more branches or items than the bounds allow.
        """
        site = site_of(topic)
        levels = topic[len(ROOT) + 1 + len(site) + 1 :].split("/")
        with self._lock:
            branch = self._branches.get(site)
            if branch is None:
                if len(self._branches) >= MAX_BRANCHES:
                    raise ProtocolError("too_many", f"more than {MAX_BRANCHES} branches")
                branch = BranchLive(site=site)
            branch = self._applied(branch, levels, payload)
            self._branches[site] = replace(branch, updated_at=now or datetime.now(UTC))
            self._version += 1
            self._lock.notify_all()

    def _applied(self, branch: BranchLive, levels: list[str], payload: bytes) -> BranchLive:
        match levels:
            case ["queue", service]:
                queue = decode(QueueState, payload) if payload else None
                return replace(branch, queues=_put(branch.queues, service, queue))
            case ["counter", counter, "state"]:
                state = decode(CounterState, payload) if payload else None
                return replace(branch, counters=_put(branch.counters, counter, state))
            case ["calls"]:
                calls = self._calls.setdefault(branch.site, deque(maxlen=RECENT_CALLS))
                calls.appendleft(decode(Call, payload))
                return replace(branch, calls=tuple(calls))
            case ["device", device, "status"]:
                status = decode(DeviceStatus, payload) if payload else None
                view = branch.devices.get(device) or DeviceView(device)
                return replace(
                    branch, devices=_put(branch.devices, device, replace(view, status=status))
                )
            case ["device", device, "health"]:
                health = decode(DeviceHealth, payload) if payload else None
                view = branch.devices.get(device) or DeviceView(device)
                return replace(
                    branch, devices=_put(branch.devices, device, replace(view, health=health))
                )
            case ["city", "catalogue", "applied"]:
                applied = decode_city(CatalogueApplied, payload) if payload else None
                return replace(branch, catalogue=applied)
        raise ProtocolError("unknown_topic", f"no live state on {'/'.join(levels)!r}")


def follow(connection: MqttConnection, live: LiveCity) -> None:
    """Feed ``live`` with every message of :data:`SUBSCRIPTIONS` that ``connection`` receives.

    What :meth:`LiveCity.apply` refuses is logged, at most once a minute per topic.
    """
    refusals = ThrottledLog(log)

    def apply(message: Inbound) -> None:
        try:
            live.apply(message.topic, message.payload)
        except ProtocolError as exc:
            refusals.log(
                logging.WARNING, ("live", message.topic), "refused %s: %s", message.topic, exc
            )

    for topic_filter in SUBSCRIPTIONS:
        connection.subscribe(topic_filter, apply)


class LiveFeed:
    """The branches' live state into a :class:`LiveCity`, on an MQTT connection of its own.

    The process of the city's web pages runs it (the consumer runs in another,
    :mod:`city.process`). The session is clean: the brokers' retained messages bring the
    whole state again after every connect. :attr:`connection`'s heartbeat is the
    network thread's, for the process's watchdog.
    """

    def __init__(
        self, settings: CitySettings, live: LiveCity, *, client_id: str = LIVE_CLIENT_ID
    ) -> None:
        self.live = live
        self.connection = MqttConnection(mqtt=settings.mqtt, client_id=client_id)
        follow(self.connection, live)

    def start(self) -> LiveFeed:
        """Connect (and keep connecting); returns at once."""
        self.connection.start()
        return self

    def stop(self) -> None:
        """Disconnect."""
        self.connection.stop()


def _put(items: Mapping[str, T], key: str, value: T | None) -> dict[str, T]:
    """A copy of ``items`` with ``key`` set to ``value`` (removed for ``None``), bounded."""
    copy = dict(items)
    if value is None:
        copy.pop(key, None)
        return copy
    if key not in copy and len(copy) >= MAX_ITEMS:
        raise ProtocolError("too_many", f"more than {MAX_ITEMS} items of one kind")
    copy[key] = value
    return copy
