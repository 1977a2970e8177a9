"""``poradovnik demo``: the whole office on one machine, with simulated people.

The demo starts the office's own Mosquitto (with generated per-device
credentials) and the hub with its bridge, then connects simulated devices over
MQTT exactly as real ones do: a kiosk where simulated citizens take tickets, a
counter panel where simulated clerks press buttons (through its durable
outbox), and a lobby display that narrates every call in the log. Each role
replaces its simulated stand-in here, with simulated hardware, as it lands.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from contextlib import ExitStack
from typing import Any

from poradovnik.common.sdnotify import Notifier
from poradovnik.common.settings import Settings
from poradovnik.hub.app import open_queue, seed_demo, serve, start_bridge, stop_on_signals
from poradovnik.hub.broker import HUB_DEVICE_ID, Role, local_broker
from poradovnik.hub.demo_office import COUNTERS, SERVICES
from poradovnik.sync_agent import protocol as p
from poradovnik.sync_agent.client import DeviceLink

log = logging.getLogger("poradovnik.demo")

KIOSK, PANEL, DISPLAY = "demo-kiosk", "demo-panel", "demo-display"


def demo_logins() -> list[tuple[str, Role, dict[str, Any]]]:
    """The demo's broker accounts: the hub and one simulated device of each kind."""
    return [
        (HUB_DEVICE_ID, "hub", {"device_id": HUB_DEVICE_ID}),
        (KIOSK, "kiosk", {"device_id": KIOSK}),
        (PANEL, "counter", {"device_id": PANEL, "counters": [c.id for c in COUNTERS]}),
        (DISPLAY, "display", {"device_id": DISPLAY}),
    ]


class SimulatedOffice:
    """Citizens at the kiosk and clerks at the counter panel, at a brisk demo pace.

    ``pace_s`` is the mean time between two things happening in the office.
    """

    def __init__(
        self, kiosk: DeviceLink, panel: DeviceLink, *, seed: int | None = None, pace_s: float = 1.5
    ) -> None:
        self.kiosk = kiosk
        self.panel = panel
        self.pace_s = pace_s
        self._rng = random.Random(seed)

    def step(self) -> None:
        """Let one thing happen: a citizen takes a ticket, or a clerk presses a button."""
        rng = self._rng
        services = [s.code for s in SERVICES]
        if rng.random() < 0.45:
            request = p.IssueRequest(
                msg_id=uuid.uuid4().hex,
                service=rng.choice(services),
                priority="age" if rng.random() < 0.05 else None,
                lang=rng.choice(["sk", "sk", "cs", "uk", "en"]),
            )
            reply = self.kiosk.request(self.kiosk.topics.kiosk_issue(KIOSK), request, 1.5)
            if isinstance(reply, p.TicketReply):
                log.info(
                    "kiosk: ticket %s, %d ahead, about %d min",
                    reply.number,
                    reply.people_ahead,
                    round((reply.estimated_wait_s or 0) / 60),
                )
            return
        counter = rng.choice(COUNTERS).id
        action = rng.choices(["next", "recall", "no_show", "transfer"], [80, 10, 5, 5])[0]
        command = p.CounterCommand(
            msg_id=uuid.uuid4().hex,
            action=action,
            service=rng.choice(services) if action == "transfer" else None,
        )
        self.panel.send(self.panel.topics.counter_cmd(counter), command)

    def run(self, stop: threading.Event) -> None:
        """Keep the office busy until ``stop`` is set."""
        while not stop.wait(self._rng.expovariate(1 / self.pace_s)):
            self.step()


def narrate_calls(display: DeviceLink) -> None:
    """Log each call the way the lobby would see and hear it."""

    def on_call(_topic: str, payload: bytes) -> None:
        try:
            call = p.decode(p.Call, payload)
        except p.ProtocolError as bad:
            log.warning("display: unreadable call: %s", bad.message)
            return
        again = " (again)" if call.recall else ""
        log.info("display: %s → %s%s", call.ticket, call.counter_name, again)

    display.subscribe(display.topics.calls(), on_call)


def run_demo(settings: Settings) -> None:
    """Run the broker, the hub and simulated devices until interrupted."""
    data = settings.data.dir
    queue = open_queue(settings)
    if not queue.engine.services:
        seed_demo(queue)
    try:
        with ExitStack() as stack:
            broker = stack.enter_context(
                local_broker(data / "broker", settings.site.id, demo_logins())
            )
            log.info("broker listening on 127.0.0.1:%d", broker.process.port)
            hub = settings.model_copy(update={"mqtt": broker.accounts[HUB_DEVICE_ID]})
            _, hub_link = start_bridge(hub, queue)
            stack.callback(hub_link.stop)
            links = {}
            for name, role in ((KIOSK, "kiosk"), (PANEL, "counter"), (DISPLAY, "display")):
                link = DeviceLink(
                    mqtt=broker.accounts[name],
                    site=settings.site.id,
                    device_id=name,
                    role=role,
                    outbox_path=data / f"{name}.outbox.sqlite3" if role == "counter" else None,
                )
                stack.callback(link.stop)
                link.start()
                links[name] = link
            narrate_calls(links[DISPLAY])
            log.info("demo office %r is open; press Ctrl+C to close it", settings.site.name)
            with stop_on_signals() as stop:
                office = SimulatedOffice(links[KIOSK], links[PANEL])
                worker = threading.Thread(target=office.run, args=(stop,), name="office")
                worker.start()
                serve(queue, stop, Notifier())
                worker.join()
    finally:
        queue.store.close()
