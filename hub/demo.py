"""``poradovnik demo``: the whole office on one machine, with simulated people.

The demo starts the office's own Mosquitto (with generated per-device
credentials) and the hub with its bridge. Each device role runs as a process of
its own, as on its own Pi, from a settings file the demo writes into its data
directory, with simulated hardware:

- the kiosk, with a simulated printer (each ticket in the log and in
  ``kiosk-printed.txt``) and simulated citizens tapping its services;
- the counter panel of all five counters on gpiozero's mock pins, with
  simulated clerks pressing its buttons;
- the lobby display, with emulated LED boards;
- appointments booked for today, whose citizens scan their QR codes at the kiosk
  (:mod:`hub.demo_bookings`), one of them a no-show;
- remote tickets taken on the portal, whose holders leave an e-mail address for
  notices and check in at the kiosk later (:mod:`hub.demo_remote`), one never coming;
  the e-mail goes to a local SMTP server that writes each notice into the log.

The kiosk and the display open windows where there is a desktop, and draw on
SDL's dummy driver where there is none. The hub's web pages (portal, admin, API)
are served as by ``poradovnik hub``; the demo's ``admin`` gets a new password at
every start, printed in the log. Every call is narrated in the log, an appointment's
marked ■.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from common.files import write_private_file
from common.identity import HUB_DEVICE_ID
from common.lifecycle import stop_on_signals
from common.sdnotify import Notifier
from common.settings import MqttSettings, Settings
from hub.accounts import city_bridge
from hub.app import (
    open_queue,
    seed_demo,
    serve,
    start_bridge,
    start_notifier,
    start_uplink,
    start_web,
)
from hub.appointments import AppointmentBook
from hub.broker import local_broker
from hub.demo_bookings import DemoBookings
from hub.demo_office import COUNTERS
from hub.demo_remote import DemoRemote, MailSink
from hub.mail import Mailer
from hub.publications import HubLink
from hub.service import QueueService
from hub.siteconfig import SiteConfig
from hub.users import Users
from sync_agent import protocol as p
from sync_agent.broker_accounts import Role

log = logging.getLogger("poradovnik.demo")

KIOSK, DISPLAY = "demo-kiosk", "demo-display"

PANELS = {"demo-panel-a": ("1", "2"), "demo-panel-b": ("3", "4", "5")}
"""The demo's two counter panels (Pis) and the counters each serves: a Pi has 28
GPIOs, enough for three counters' buttons and lights."""

STOP_TIMEOUT_S = 10.0
"""How long a device process may take to stop before it is killed."""

ADMIN = "admin"
"""The demo's admin user."""

CITIZENS_S = 4.0
"""Simulated citizens come to the kiosk about this many seconds apart."""

CLERKS_S = 3.0
"""Simulated clerks press a button about this many seconds apart."""

PANEL_PARTS = (
    "next",
    "recall",
    "no_show",
    "done",
    "transfer",
    "pause",
    "ready_led",
    "serving_led",
    "offline_led",
)
"""The parts fitted for each counter on the demo's (mock) counter panels."""


def demo_logins() -> list[tuple[str, Role, dict[str, Any]]]:
    """The demo's broker accounts: the hub, its kiosk, its two counter panels, its display."""
    return [
        (HUB_DEVICE_ID, "hub", {"device_id": HUB_DEVICE_ID}),
        (KIOSK, "kiosk", {"device_id": KIOSK}),
        *(
            (name, "counter", {"device_id": name, "counters": list(ids)})
            for name, ids in PANELS.items()
        ),
        (DISPLAY, "display", {"device_id": DISPLAY}),
    ]


def narrate_calls(link: HubLink) -> None:
    """Log each call the way the lobby would see and hear it."""

    def on_call(_topic: str, payload: bytes) -> None:
        try:
            call = p.decode(p.Call, payload)
        except p.ProtocolError as bad:
            log.warning("lobby: unreadable call: %s", bad.message)
            return
        again = " (again)" if call.recall else ""
        mark = " ■ appointment" if call.appointment else ""
        log.info("lobby: %s → %s%s%s", call.ticket, call.counter_name, again, mark)

    link.subscribe(link.topics.calls(), on_call)


def screen_attached() -> bool:
    """Whether this computer shows windows: an X11 or Wayland desktop is running."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def demo_admin(queue: QueueService) -> str:
    """Give the demo's ``admin`` a new password (creating the user once); return it."""
    users = Users(queue.store)
    password = secrets.token_urlsafe(9)
    if users.get(ADMIN) is None:
        users.add(ADMIN, password, "admin")
    else:
        users.set_password(ADMIN, password)
    return password


def scanner_fifo(data: Path) -> Path:
    """The demo kiosk's simulated QR scanner: each line written to this FIFO is a scan."""
    return (data / "kiosk-scanner").resolve()


def kiosk_section(data: Path, portal_url: str) -> dict[str, Any]:
    """``[kiosk]`` of the demo's kiosk: a 800×480 window, a simulated printer, citizens.

    Its simulated QR scanner is a FIFO in the demo's data (:func:`scanner_fifo`):
    ``echo 12345678 > <data>/kiosk-scanner`` scans a booking.
    """
    return {
        "portal_url": portal_url,
        "scanner": "simulated",
        "scanner_device": str(scanner_fifo(data)),
        "fullscreen": False,
        "width": 800,
        "height": 480,
        "simulate_citizens_s": CITIZENS_S,
        "printer": {
            "backend": "simulated",
            "simulated_file": str((data / "kiosk-printed.txt").resolve()),
        },
    }


def counter_section(counters: tuple[str, ...]) -> dict[str, Any]:
    """``[counter]`` of a demo panel: its counters on mock pins, simulated clerks."""
    width = len(PANEL_PARTS)
    panels = [
        {"counter": counter, **{part: width * n + i for i, part in enumerate(PANEL_PARTS)}}
        for n, counter in enumerate(counters)
    ]
    return {
        "pin_factory": "mock",
        "display": "simulated",
        "simulate_clerks_s": CLERKS_S,
        "panels": panels,
    }


def display_section(screen: bool) -> dict[str, Any]:
    """``[display]`` of the demo's lobby display: a 1280×720 window, emulated boards."""
    boards: list[dict[str, Any]] = [
        {"address": n, "counter": counter.id} for n, counter in enumerate(COUNTERS, 1)
    ]
    boards.append({"address": len(COUNTERS) + 1, "hall": True})
    return {
        "video_driver": "auto" if screen else "dummy",
        "fullscreen": False,
        "width": 1280,
        "height": 720,
        "sound": "pygame" if screen else "none",
        "boards_backend": "simulated",
        "boards": boards,
    }


def device_settings(
    settings: Settings, device: str, role: str, mqtt: MqttSettings, section: dict[str, Any]
) -> dict[str, Any]:
    """The settings file of one demo device, as a device in the office would have it."""
    password = mqtt.password.get_secret_value() if mqtt.password is not None else ""
    site = settings.site
    return {
        "role": role,
        "site": {
            "id": site.id,
            "name": site.name,
            "timezone": site.timezone,
            "languages": list(site.languages),
        },
        "mqtt": {
            "host": mqtt.host,
            "port": mqtt.port,
            "username": mqtt.username or "",
            "password": password,
        },
        "data": {"dir": str((settings.data.dir / device).resolve())},
        "device": {"id": device},
        "logging": {"level": settings.logging.level},
        role: section,
    }


@contextmanager
def role_process(
    name: str,
    role: str,
    config: dict[str, Any],
    path: Path,
    *,
    env: dict[str, str] | None = None,
) -> Iterator[None]:
    """Run ``poradovnik <role>`` with the settings ``config`` (written to ``path``).

    A device's role, or a whole office's demo (``demo``) or the city (``city``): its
    log goes to the demo's terminal; ``env`` is added to its environment. On leaving,
    it gets SIGTERM, then SIGKILL if it has not stopped within :data:`STOP_TIMEOUT_S`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(path, tomli_w.dumps(config))  # it holds a broker password
    env = {**os.environ, **(env or {})}
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("SDL_VIDEODRIVER", "dummy")
        env.setdefault("SDL_AUDIODRIVER", "dummy")
    command = [sys.executable, "-m", "poradovnik.cli", role, "--config", str(path)]
    process = subprocess.Popen(command, env=env)
    log.info("%s: started `poradovnik %s` (pid %d, settings %s)", name, role, process.pid, path)
    try:
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", name, STOP_TIMEOUT_S)
                process.kill()
                process.wait()
        if process.returncode not in (0, -15):
            log.warning("%s ended with exit status %s", name, process.returncode)


def demo_mail(stack: ExitStack, hub: Settings) -> tuple[Settings, Mailer]:
    """Start the demo's local SMTP sink (stopped with ``stack``) and a mailer to it.

    Returns ``hub`` with ``[mail]`` sending there, and the running :class:`Mailer`.
    """
    sink = MailSink().start()
    stack.callback(sink.stop)
    hub = hub.model_copy(update={"mail": sink.settings()})
    mailer = Mailer(hub.mail).start()
    stack.callback(mailer.stop)
    return hub, mailer


def run_demo(settings: Settings) -> None:
    """Run the broker, the hub, the device processes and simulated people until interrupted."""
    data = settings.data.dir
    queue = open_queue(settings)
    if not queue.engine.services:
        seed_demo(queue)
    try:
        with ExitStack() as stack:
            broker = stack.enter_context(
                local_broker(
                    data / "broker", settings.site.id, demo_logins(), bridge=city_bridge(settings)
                )
            )
            log.info("broker listening on 127.0.0.1:%d", broker.process.port)
            for account in broker.logins:  # the hub answers each device by its account
                queue.store.save_account(account, at=datetime.now(UTC))
            hub = settings.model_copy(update={"mqtt": broker.accounts[HUB_DEVICE_ID]})
            bridge, hub_link = start_bridge(hub, queue)
            stack.callback(hub_link.stop)
            narrate_calls(hub_link)
            uplink = start_uplink(hub, queue)
            if uplink is not None:
                stack.callback(uplink.stop)
            bookings = DemoBookings(
                queue,
                AppointmentBook(
                    queue,
                    per_address=settings.web.bookings_per_address,
                    per_email=settings.web.bookings_per_email,
                ),
                scanner_fifo(data),
                arrive_after_s=CITIZENS_S,
            )
            bookings.book_the_day()
            hub, mailer = demo_mail(stack, hub)
            site = SiteConfig(queue.store, hub)
            notices = start_notifier(hub, queue, mailer, site)
            remote = None
            if notices is not None:
                stack.callback(notices.stop)
                remote = DemoRemote(queue, notices, scanner_fifo(data))
                remote.take_tickets()
            web = start_web(hub, queue, bridge, mailer, notices, site)
            stack.callback(web.stop)
            portal = settings.web.public_url or f"http://{settings.web.host}:{web.port}"
            log.info("citizens' portal at %s/, lobby display page at %s/display", portal, portal)
            log.info("sign in at %s/admin as %s, password %s", portal, ADMIN, demo_admin(queue))
            screen = screen_attached()
            devices = [
                (KIOSK, "kiosk", kiosk_section(data, portal)),
                *((name, "counter", counter_section(ids)) for name, ids in PANELS.items()),
                (DISPLAY, "display", display_section(screen)),
            ]
            for name, role, section in devices:
                config = device_settings(settings, name, role, broker.accounts[name], section)
                stack.enter_context(role_process(name, role, config, data / f"{name}.toml"))
            bookings.start()
            stack.callback(bookings.stop)
            if remote is not None:
                remote.start()
                stack.callback(remote.stop)
            log.info("demo office %r is open; press Ctrl+C to close it", settings.site.name)
            with stop_on_signals() as stop:
                serve(queue, stop, Notifier(), [hub_link.heartbeat])
    finally:
        queue.store.close()
