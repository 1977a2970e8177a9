"""The test office: its broker's accounts, the running broker and the running hub.

The shared fixtures (``conftest.py``) build on these; tests import the names from
here (never from a ``conftest.py``, of which there is one per directory).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from common.settings import DataSettings, MqttSettings, Settings, SiteSettings
from hub.bridge import HubBridge
from hub.broker import Mosquitto, local_broker
from hub.service import QueueService
from sync_agent.broker_accounts import Account, Role
from sync_agent.link import DeviceLink

MOSQUITTO_MISSING = "is not installed: apt-get install mosquitto (./scripts/test installs it)"
"""How a broker test fails where Mosquitto is missing: it never skips."""


def require_mosquitto(program: str = "mosquitto") -> str:
    """The path of Mosquitto's ``program`` (the broker, or ``mosquitto_passwd``); fails
    the test with the command that installs it when it is not there."""
    found = shutil.which(program) or next(
        (str(path) for path in (Path("/usr/sbin", program),) if path.exists()), None
    )
    if found is None:
        pytest.fail(f"{program} {MOSQUITTO_MISSING}", pytrace=False)
    return found


ACCOUNTS: tuple[tuple[str, Role, dict[str, Any]], ...] = (
    ("hub", "hub", {"device_id": "hub"}),
    ("kiosk-k1", "kiosk", {"device_id": "k1"}),
    ("kiosk-k2", "kiosk", {"device_id": "k2"}),
    ("display-d1", "display", {"device_id": "d1"}),
    ("panel-p1", "counter", {"device_id": "p1", "counters": ("1", "2")}),
    ("panel-p2", "counter", {"device_id": "p2", "counters": ("3", "4", "5")}),
    ("imesto", "backoffice", {}),
)
"""Who the test office's broker lets in: user name, role, and what the account is for."""


@dataclass
class OfficeBroker:
    """A running Mosquitto of the test office, with the password of every account."""

    process: Mosquitto
    passwords: dict[str, str]
    accounts: tuple[Account, ...] = ()
    """The accounts, as the hub's store keeps them (the hub answers devices by them)."""
    site: str = "office"

    @property
    def port(self) -> int:
        return self.process.port

    def mqtt(self, username: str) -> MqttSettings:
        """The ``[mqtt]`` settings a device with this account would have."""
        return MqttSettings(
            host="127.0.0.1",
            port=self.port,
            username=username,
            password=SecretStr(self.passwords[username]),
        )


@contextmanager
def office_broker(directory: Path) -> Iterator[OfficeBroker]:
    """A real Mosquitto on a free port of 127.0.0.1, configured as the hub generates it."""
    require_mosquitto()
    with local_broker(directory, "office", ACCOUNTS) as running:
        yield OfficeBroker(
            running.process,
            {
                name: mqtt.password.get_secret_value()
                for name, mqtt in running.accounts.items()
                if mqtt.password is not None
            },
            running.logins,
        )


def hub_settings(broker: OfficeBroker, data_dir: Path) -> Settings:
    """Settings of a hub on the test broker, keeping its database in ``data_dir``."""
    return Settings(
        role="hub",
        site=SiteSettings(id=broker.site),
        mqtt=broker.mqtt("hub"),
        data=DataSettings(dir=data_dir),
    )


@dataclass
class RunningHub:
    """The hub's queue and bridge, connected to the test broker."""

    queue: QueueService
    bridge: HubBridge
    link: DeviceLink

    def stop(self) -> None:
        self.link.stop()
        self.queue.store.close()
