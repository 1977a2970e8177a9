"""A kiosk on a loopback network printer (in the test, or as its own process): for the kiosk's
tests, the watchdog's and the end-to-end ones."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pygame
import tomli_w
from office_helpers import OfficeBroker, RunningHub

from hub.bridge import DeviceView, HubBridge
from kiosk.app import KioskApp
from kiosk.catalog import LANGUAGES, Catalog
from kiosk.dispenser import Kiosk
from kiosk.fonts import font_path
from kiosk.loopback import LoopbackPrinter
from kiosk.offline import OfflineBook
from kiosk.printer import NetworkTransport, TicketPrinter, Transport
from kiosk.ui import Screen
from sync_agent.link import DeviceLink

FONTS = Path("/usr/share/fonts/truetype/dejavu")
CUT = b"\x1dV\x00"
TZ = "Europe/Bratislava"
WAIT_S = 15.0  # an upper bound for waiting, never a pause


# What an Epson printer answers to DLE EOT 1, 2 and 4 in each condition.
REPLIES = {
    "ok": {1: 0x16, 2: 0x12, 4: 0x12},
    "paper_near_end": {1: 0x16, 2: 0x12, 4: 0x1E},
    "paper_out": {1: 0x1E, 2: 0x32, 4: 0x72},
    "cover_open": {1: 0x1E, 2: 0x16, 4: 0x12},
}


def make_printer(transport: Transport, profile: str = "TM-T20II") -> TicketPrinter:
    return TicketPrinter(
        transport=transport,
        profile=profile,
        catalogs=Catalog.load_all(),
        font=font_path(FONTS),
        office="Magistrát mesta Košice",
        portal_url="https://poradovnik.example/",
        footer="Po–Pi 8:00–15:00",
        status_timeout_s=0.3,
    )


def network(loopback: LoopbackPrinter, profile: str = "TM-T20II") -> NetworkTransport:
    return NetworkTransport(host="127.0.0.1", port=loopback.port, profile=profile, timeout_s=5)


@dataclass
class Office:
    kiosk: Kiosk
    app: KioskApp
    printer: LoopbackPrinter
    link: DeviceLink
    now: list[float]

    def later(self, seconds: float) -> None:
        """Let the screen's clock run on (past the double-tap guard, a timeout)."""
        self.now[0] += seconds

    def tap(self, kind: str, value: str = "", *, touch: bool = False) -> None:
        button = next(b for b in self.app.screen.buttons if (b.kind, b.value) == (kind, value))
        if touch:
            width, height = self.app.screen.surface.get_size()
            x, y = button.rect.center
            event = pygame.event.Event(pygame.FINGERDOWN, x=x / width, y=y / height, finger_id=0)
        else:
            event = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=button.rect.center, button=1)
        pygame.event.post(event)

    def settle(self) -> None:
        """Handle the taps, then wait for the ticket being issued (if any)."""
        self.app.step()
        self.app.step(wait_s=WAIT_S)


def wait_until(kiosk: Kiosk, condition: Callable[[], bool]) -> None:
    while not condition():
        assert kiosk.changed.wait(WAIT_S), "the kiosk heard nothing more"
        kiosk.changed.clear()


def open_kiosk(
    link: DeviceLink,
    loopback: LoopbackPrinter,
    tmp_path: Path,
    size: tuple[int, int] = (800, 480),
    *,
    blocks: bool = True,
    screen_height_mm: float | None = None,
    **options: object,
) -> Office:
    catalogs = Catalog.load_all()
    kiosk = Kiosk(
        link=link,
        printer=make_printer(network(loopback)),
        book=OfflineBook(tmp_path / "blocks.sqlite3"),
        catalogs=catalogs,
        timezone=ZoneInfo(TZ),
        hub_timeout_s=1.0,
        block_size=4,
        **options,  # type: ignore[arg-type]
    )
    screen = Screen(
        pygame.display.set_mode(size),
        font_dir=FONTS,
        office="Mestský úrad",
        screen_height_mm=screen_height_mm,
    )
    now = [1000.0]
    app = KioskApp(
        kiosk, screen, catalogs, languages=LANGUAGES, confirm_timeout_s=30, clock=lambda: now[0]
    )
    kiosk.start()
    wait_until(kiosk, lambda: len(kiosk.services()) == 4 and kiosk.online)
    if blocks:
        assert kiosk.refresh_blocks()  # numbers 1-4 of each service are the kiosk's now
    app.step()
    return Office(kiosk, app, loopback, link, now)


def foreign_link(broker: OfficeBroker, tmp_path: Path) -> DeviceLink:
    """A kiosk's link with [device] id ``k9`` but the broker account of ``kiosk-k1``: the
    broker refuses what it sends."""
    return DeviceLink(
        mqtt=broker.mqtt("kiosk-k1"),
        site=broker.site,
        device_id="k9",
        role="kiosk",
        outbox_path=tmp_path / "k9.sqlite3",
    )


def hub_gone(office: Office, hub: RunningHub) -> None:
    """Stop the hub (the broker stays) and wait until the kiosk knows it is offline."""
    hub.stop()
    wait_until(office.kiosk, lambda: not office.kiosk.online)


def hub_back(office: Office, start_hub: Callable[[], RunningHub]) -> RunningHub:
    """Start the hub again and wait until it answered the kiosk's delivery; the new hub."""
    delivered = threading.Event()
    office.link.on_reply(lambda command, reply: delivered.set())
    again = start_hub()
    assert delivered.wait(WAIT_S)
    return again


# -- a kiosk as its own process (``poradovnik kiosk``) with a simulated scanner -------


def kiosk_config(path: Path, broker: OfficeBroker, loopback: LoopbackPrinter, fifo: Path) -> Path:
    config = {
        "role": "kiosk",
        "site": {"id": broker.site},
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker.port,
            "username": "kiosk-k1",
            "password": broker.passwords["kiosk-k1"],
        },
        "data": {"dir": str(path.parent / "kiosk")},
        "device": {"id": "k1"},
        "kiosk": {
            "fullscreen": False,
            "width": 800,
            "height": 480,
            "scanner": "simulated",
            "scanner_device": str(fifo),
            "printer": {"backend": "network", "host": "127.0.0.1", "port": loopback.port},
        },
    }
    path.write_text(tomli_w.dumps(config))
    return path


def scan(fifo: Path, text: str) -> None:
    """One scan: a line into the kiosk's FIFO (it has the FIFO open for reading)."""
    with fifo.open("w") as scanner:
        scanner.write(text + "\n")


def scanner_ready(bridge: HubBridge, device_id: str) -> threading.Event:
    """Set once the hub hears that kiosk ``device_id``'s scanner is ok (it reads the FIFO):
    the kiosk is then ready to check in."""
    ready = threading.Event()

    def heard(view: DeviceView) -> None:
        parts = view.health.parts if view.health is not None else {}
        if view.device_id == device_id and "scanner" in parts and parts["scanner"].state == "ok":
            ready.set()

    bridge.on_device(heard)
    return ready
