"""What the city web's tests share: a city of three branches, their live state, sign-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from web_helpers import csrf_token

from city.live import LiveCity
from city.services import CityServices
from city.store import CityStore
from city.web import create_city_app
from common.settings import CitySettings, DataSettings, Settings
from sync_agent.protocol import (
    CounterState,
    DeviceHealth,
    DeviceStatus,
    PartHealth,
    QueueState,
    TicketInfo,
    Topics,
)

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

PASSWORD = "correct horse battery"
"""Every test user's password."""

BRANCHES = {
    "north": ("Sever", "Hlavná 1", "https://north.example"),
    "south": ("Juh", "Južná 2", "https://south.example"),
    "west": ("Západ", "Západná 3", None),
}
"""The test city: site → name, address, portal. West's hub is offline."""


def city_settings(database_url: str, data_dir: Path) -> Settings:
    """Settings of a city server on ``database_url``."""
    return Settings(
        role="city",
        city=CitySettings(database_url=database_url, name="Mesto Test"),
        data=DataSettings(dir=data_dir),
    )


def queue(service: str, prefix: str, waiting: int, wait_s: int | None, **more: Any) -> bytes:
    """A branch's retained ``queue/<service>`` payload."""
    names = {"sk": f"{service} sk", "en": f"{service} en"}
    state = QueueState(
        service=service,
        prefix=prefix,
        names=names,
        open=more.pop("open", True),
        hours="always",
        waiting=waiting,
        estimated_wait_s=wait_s,
        issued_today=waiting,
        daily_limit=None,
        open_counters=1,
        at=NOW,
        **more,
    )
    return state.encode()


def hub_status(state: str) -> bytes:
    return DeviceStatus(state=state, role="hub", at=NOW).encode()  # type: ignore[arg-type]


def fill_live(live: LiveCity) -> None:
    """North and south online, west's hub offline; north's kiosk low on paper and its
    display offline; north's counter 1 serving A007."""
    north, south, west = Topics("north"), Topics("south"), Topics("west")
    live.apply(north.queue("taxes"), queue("taxes", "A", 7, 1200))
    live.apply(north.queue("waste"), queue("waste", "B", 1, 60))
    live.apply(south.queue("taxes"), queue("taxes", "A", 2, 300))
    live.apply(south.queue("waste"), queue("waste", "B", 0, None, open=False, opens_at=NOW))
    live.apply(west.queue("taxes"), queue("taxes", "A", 0, 0))
    live.apply(north.hub_status(), hub_status("online"))
    live.apply(south.hub_status(), hub_status("online"))
    live.apply(west.hub_status(), hub_status("offline"))
    live.apply(
        north.device_status("kiosk-1"),
        DeviceStatus(state="online", role="kiosk", at=NOW).encode(),
    )
    live.apply(
        north.device_health("kiosk-1"),
        DeviceHealth(parts={"printer": PartHealth(state="paper_near_end")}, at=NOW).encode(),
    )
    live.apply(
        north.device_status("display-1"),
        DeviceStatus(state="offline", role="display", at=NOW).encode(),
    )
    ticket = TicketInfo(
        ticket_id="t7",
        number="A007",
        service="taxes",
        state="called",
        calls=1,
        called_at=NOW,
        issued_at=NOW - timedelta(minutes=20),
    )
    live.apply(
        north.counter_state("c1"),
        CounterState(
            counter="c1", name="Okienko 1", state="open", services=["taxes"], ticket=ticket, at=NOW
        ).encode(),
    )
    live.apply(
        north.counter_state("c2"),
        CounterState(
            counter="c2", name="Okienko 2", state="paused", services=["waste"], ticket=None, at=NOW
        ).encode(),
    )


def city_app(store: CityStore, data_dir: Path, **config: Any) -> tuple[Flask, CityServices]:
    """The city's web app on ``store`` with :data:`BRANCHES`, their live state and users:
    ``admin`` (city admin), ``viewer`` (north), ``manager`` (south, manager)."""
    for site, (name, address, url) in BRANCHES.items():
        store.add_branch(site, name=name, address=address, url=url)
    store.add_user("admin", PASSWORD, city_admin=True)
    store.add_user("viewer", PASSWORD, roles={"north": "viewer"})
    store.add_user("manager", PASSWORD, roles={"south": "manager"})
    settings = city_settings(store.url, data_dir)
    services = CityServices(settings=settings, store=store)
    fill_live(services.live)
    app = create_city_app(
        settings, services, config={"TESTING": True, "CITY_PAGE_MIN_AGE_S": 0.0, **config}
    )
    return app, services


def sign_in(client: FlaskClient, username: str) -> None:
    """Sign ``username`` in (with :data:`PASSWORD`), in English."""
    client.set_cookie("lang", "en")
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        "/admin/login", data={"csrf_token": token, "username": username, "password": PASSWORD}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
