"""The admin's devices page shows what the devices report over MQTT (real broker and hub)."""

from __future__ import annotations

import queue
from collections.abc import Callable

from office_helpers import RunningHub
from web_helpers import ADMIN_PASSWORD, csrf_token

from common.settings import Settings
from hub.app import web_app
from hub.bridge import DeviceView
from hub.users import Users
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

WAIT_S = 10.0


def test_the_devices_page_shows_status_and_printer_paper(
    hub: RunningHub, device: Callable[..., DeviceLink], web_settings: Settings
) -> None:
    heard: queue.Queue[DeviceView] = queue.Queue()
    hub.bridge.on_device(heard.put)
    kiosk = device("kiosk-k1")
    kiosk.publish_health({"printer": p.PartHealth(state="paper_near_end")})
    while True:
        view = heard.get(timeout=WAIT_S)
        if view.device_id == "k1" and view.health is not None and view.status is not None:
            break
    app = web_app(web_settings, hub.queue, bridge=hub.bridge, config={"TESTING": True})
    client = app.test_client()
    Users(hub.queue.store).add("admin", ADMIN_PASSWORD, "admin")
    token = csrf_token(client, "/admin/login")
    client.post(
        "/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token}
    )
    page = client.get("/admin/devices").get_data(as_text=True)
    # The page's head holds random tokens (CSRF, nonces) that may spell "k1"; look at rows only.
    rows = page.split("<tbody>", 1)[1].split("<tr>")
    row = next(line for line in rows if "<td>kiosk-k1" in line)
    assert '<span class="online">online</span>' in row
    assert "printer: paper_near_end" in row
