"""What a link tells the office about its device, retained: its status and its health.

Every participant of the link, each device and the hub, has the retained
``device/<id>/status`` (``online`` after every connect, ``offline`` when it stops, or
from the broker as its last will when it dies) and ``device/<id>/health``.
:class:`Presence` keeps both on one :class:`~sync_agent.connection.MqttConnection`:
a device's :class:`~sync_agent.link.DeviceLink` and the hub's
:class:`~hub.publications.HubLink` each have one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from common.version import __version__
from sync_agent.connection import LastWill, MqttConnection
from sync_agent.protocol import DeviceHealth, DeviceStatus, PartHealth, Topics

__all__ = ["LINK_PART", "Presence"]

LINK_PART = "mqtt"
"""The part of a device's health that tells what the broker refuses it, if anything."""


class Presence:
    """A device's retained status and health on its connection.

    Build it first, give :attr:`will` to the connection as its last will, then
    :meth:`attach` it: after every connect it says ``online`` and repeats the latest
    health; when the broker refuses the device something it says so in
    :attr:`problem` and in the health (part ``mqtt``). :meth:`farewell` is the
    ``offline`` status for a clean stop.
    """

    def __init__(self, *, topics: Topics, device_id: str, role: str) -> None:
        self.topics = topics
        self.device_id = device_id
        self.role = role
        self.status_topic = topics.device_status(device_id)
        self.will = LastWill(self.status_topic, self._status("offline", at=None))
        """The last will: ``offline``, retained (building it also checks the role)."""
        self.problem: str | None = None
        """Why the broker refuses this device something (its account does not fit its
        ``[device] id``, say): one sentence naming the topic and the account, for the
        device's screen, log and health; ``None`` while nothing was refused."""
        self._connection: MqttConnection | None = None
        self._lock = threading.Lock()
        self._parts: dict[str, PartHealth] = {}
        """The device's hardware health as last given to :meth:`publish_health`."""
        self._health: bytes | None = None
        """The health as last published (``None``: nothing yet, or to be built again)."""
        self._health_problem: str | None = None
        """The :attr:`problem` the published health tells of."""

    def attach(self, connection: MqttConnection) -> None:
        """Speak on ``connection`` (made with :attr:`will`) from its next connect on."""
        self._connection = connection
        connection.on_connect(self._announce)
        connection.on_refused(self._refused)

    def farewell(self) -> LastWill:
        """The ``offline`` status to publish at a clean stop (the broker discards the will)."""
        return LastWill(self.status_topic, self._status("offline", at=datetime.now(UTC)))

    def _status(self, state: str, *, at: datetime | None) -> bytes:
        data: dict[str, Any] = {"state": state, "role": self.role}
        if at is not None:
            data.update(version=__version__, at=at)
        return DeviceStatus.model_validate(data).encode()

    def publish_health(self, parts: Mapping[str, PartHealth]) -> None:
        """Publish the device's hardware health, retained; it is re-published on reconnect.

        While the broker refuses the device something (:attr:`problem`), the health
        also has the part ``mqtt`` in state ``error`` saying what.
        """
        with self._lock:
            self._parts = dict(parts)
            self._health = None
            self._publish_health()

    def _publish_health(self) -> None:
        """Publish the health given and the link's own part, retained; under ``_lock``.

        The message is built again only when something in it changed, so after a
        reconnect the same message is published again.
        """
        if self._connection is None:
            return
        if self._health is None or self._health_problem != self.problem:
            if self._health is None and not self._parts and self.problem is None:
                return  # nothing to say yet
            parts = dict(self._parts)
            if self.problem is not None:
                parts[LINK_PART] = PartHealth(state="error", detail=self.problem[:200])
            self._health = DeviceHealth(parts=parts, at=datetime.now(UTC)).encode()
            self._health_problem = self.problem
        self._connection.publish(
            self.topics.device_health(self.device_id), self._health, retain=True
        )

    # -- network thread callbacks --------------------------------------------------

    def _announce(self) -> None:
        """After each connect: say online, and repeat the latest health."""
        assert self._connection is not None
        online = self._status("online", at=datetime.now(UTC))
        with self._lock:
            # What the broker refused is found again on this connection, if it still is.
            self.problem = None
        self._connection.publish(self.status_topic, online, retain=True)
        with self._lock:
            self._publish_health()

    def _refused(self, action: str, topic: str, reason: str) -> None:
        """The broker refused ``topic``: say why, once, in :attr:`problem` and the health."""
        assert self._connection is not None
        username = self._connection.settings.username
        problem = (
            f"the broker refuses account {username!r} to {action} {topic}: {reason}; "
            f"is this device's [device] id {self.device_id!r} the device id of that account?"
        )
        with self._lock:
            if self.problem == problem:
                return
            self.problem = problem
            if topic != self.topics.device_health(self.device_id):
                self._publish_health()
