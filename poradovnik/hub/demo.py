"""``poradovnik demo``: the whole office on one machine, with simulated people.

The demo runs the hub on the demo office. Until every role has landed, simulated
citizens take tickets and simulated clerks call them through the same service
layer the real devices use, and a log line narrates each step, so the office can
be watched from a terminal.
"""

from __future__ import annotations

import logging
import random
import threading

from poradovnik.common.sdnotify import Notifier
from poradovnik.common.settings import Settings
from poradovnik.hub.app import open_queue, seed_demo, serve, stop_on_signals
from poradovnik.hub.engine import QueueError
from poradovnik.hub.model import Action, Change, Priority
from poradovnik.hub.service import QueueService

log = logging.getLogger("poradovnik.demo")


class SimulatedOffice:
    """Citizens who take tickets and clerks who call them, at a brisk demo pace.

    ``pace_s`` is the mean time between two things happening in the office.
    """

    def __init__(
        self, queue: QueueService, *, seed: int | None = None, pace_s: float = 1.5
    ) -> None:
        self.queue = queue
        self.pace_s = pace_s
        self._rng = random.Random(seed)

    def step(self) -> None:
        """Let one thing happen: a citizen arrives or a clerk acts."""
        rng = self._rng
        services = list(self.queue.engine.services)
        counters = list(self.queue.engine.counters)
        if not services or not counters:
            return
        try:
            if rng.random() < 0.45:
                priority = Priority.AGE if rng.random() < 0.05 else None
                self.queue.issue(rng.choice(services), priority=priority, actor="demo:citizen")
                return
            counter = rng.choice(counters)
            action = rng.choices(["next", "recall", "no_show", "transfer"], [80, 10, 5, 5])[0]
            target = rng.choice(services) if action == "transfer" else None
            self.queue.counter_action(counter, action, service=target, actor="demo:clerk")
        except QueueError as refused:
            log.debug("the office refused: %s", refused.message)

    def run(self, stop: threading.Event) -> None:
        """Keep the office busy until ``stop`` is set."""
        while not stop.wait(self._rng.expovariate(1 / self.pace_s)):
            self.step()


def narrate(queue: QueueService) -> None:
    """Log each issue and call the way the lobby would see and hear them."""

    def on_change(change: Change) -> None:
        for event in change.events:
            ticket = change.ticket(event.ticket_id) if event.ticket_id else None
            if ticket is None:
                continue
            if event.action is Action.ISSUE:
                estimate = queue.engine.estimate(ticket)
                log.info(
                    "ticket %s for %s: %d ahead, about %d min",
                    ticket.number,
                    queue.engine.services[ticket.service].name("sk"),
                    estimate.people_ahead,
                    round((estimate.estimated_wait_s or 0) / 60),
                )
            elif event.action in (Action.CALL, Action.RECALL) and ticket.counter:
                counter = queue.engine.counters[ticket.counter].name
                again = " (again)" if event.action is Action.RECALL else ""
                log.info("call %s → %s%s", ticket.number, counter, again)

    queue.subscribe(on_change)


def run_demo(settings: Settings) -> None:
    """Run the hub on the demo office with simulated citizens and clerks."""
    queue = open_queue(settings)
    if not queue.engine.services:
        seed_demo(queue)
    narrate(queue)
    log.info("demo office %r is open; press Ctrl+C to close it", settings.site.name)
    try:
        with stop_on_signals() as stop:
            office = threading.Thread(
                target=SimulatedOffice(queue).run, args=(stop,), name="office", daemon=True
            )
            office.start()
            serve(queue, stop, Notifier())
            office.join()
    finally:
        queue.store.close()
