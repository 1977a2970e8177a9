"""Fixtures of the kiosk's tests (beyond the shared broker, hub, devices and programs);
the kiosk and its loopback printer are built by ``kiosk_helpers``, which the watchdog's
tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kiosk_helpers import REPLIES, Office, open_kiosk
from office_helpers import RunningHub

from kiosk.loopback import LoopbackPrinter
from sync_agent.link import DeviceLink


@pytest.fixture
def office(hub: RunningHub, device: Callable[..., DeviceLink], tmp_path: Path) -> Iterator[Office]:
    """Kiosk k1 on the test hub, with a loopback printer that answers "ready"."""
    with LoopbackPrinter(REPLIES["ok"]) as loopback:
        opened = open_kiosk(device("kiosk-k1", start=False), loopback, tmp_path)
        yield opened
        opened.kiosk.stop()
