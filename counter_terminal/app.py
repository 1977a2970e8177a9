"""``poradovnik counter``: runs a counter panel: its buttons, lights and optional panel display.

:class:`CounterTerminal` is the role: one :class:`~.desk.CounterDesk` per
``[[counter.panels]]`` table, all on one pin factory and one
:class:`~sync_agent.link.DeviceLink` (role ``counter``). Commands go
through the link's durable outbox, so a press made while the hub or the broker is away
waits on disk and is applied exactly once when they are back; the hub's retained
``counter/<id>/state``, ``queue/<service>`` (only where a panel has a display or a
Transfer button, the parts that use it) and ``device/hub/status`` drive the lights and
displays. :func:`run` wires it to the settings, systemd and the signals.
"""

from __future__ import annotations

import gc
import logging
import random
import sqlite3
import threading
from collections.abc import Mapping
from types import TracebackType

from common.counter_settings import CounterSettings, PanelSettings
from common.errors import PoradovnikError
from common.lifecycle import stop_on_signals
from common.liveness import Heartbeat, Watchdog
from common.sdnotify import Notifier
from common.settings import Settings
from counter_terminal.desk import CounterDesk, Office, Outgoing
from counter_terminal.hardware import PinFactory, pin_factory
from counter_terminal.lcd import LcdDisplay, PanelDisplay, SimulatedDisplay
from counter_terminal.panel import CounterPanel
from counter_terminal.simulated import SimulatedClerks
from sync_agent import protocol as p
from sync_agent.link import DeviceLink, Reply

__all__ = ["CounterTerminal", "open_display", "run"]

log = logging.getLogger(__name__)

OUTBOX_FILE = "counter-outbox.sqlite3"
"""The outbox's file in ``[data] dir``."""


def open_display(config: CounterSettings, panel: PanelSettings) -> PanelDisplay | None:
    """The panel display of ``panel``'s counter that ``[counter] display`` asks for."""
    if config.display == "lcd":
        return LcdDisplay(
            address=panel.lcd_address,
            port=config.lcd_port,
            expander=config.lcd_expander,
            cols=config.lcd_cols,
            rows=config.lcd_rows,
            charmap=config.lcd_charmap,
        )
    if config.display == "simulated":
        return SimulatedDisplay(
            name=f"counter {panel.counter}", cols=config.lcd_cols, rows=config.lcd_rows
        )
    return None


def _device_link(settings: Settings) -> DeviceLink:
    path = settings.data.dir / OUTBOX_FILE
    try:
        return DeviceLink(
            mqtt=settings.mqtt,
            site=settings.site.id,
            device_id=settings.device.id,
            role="counter",
            outbox_path=path,
        )
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        raise PoradovnikError(f"cannot open the outbox {path}: {exc}") from None


class CounterTerminal:
    """The counter panels of one Pi, linked to the hub.

    ``pin_factory`` is the gpiozero pin factory (by default the one ``[counter]
    pin_factory`` names); ``link`` the device's link to the hub (by default one from
    ``[mqtt]``, ``[device] id`` and an outbox in ``[data] dir``); ``displays`` the panel
    displays by counter (by default those ``[counter] display`` names).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        pin_factory: PinFactory | None = None,
        link: DeviceLink | None = None,
        displays: Mapping[str, PanelDisplay | None] | None = None,
    ) -> None:
        config = settings.counter
        if not config.panels:
            raise PoradovnikError(
                "no counter panel is set up: add a [[counter.panels]] table with the "
                "counter's id and its buttons' GPIOs (see docs/config/counter.toml)"
            )
        self.settings = settings
        self.factory = pin_factory if pin_factory is not None else _open_factory(config)
        self.office = Office()
        self.desks: dict[str, CounterDesk] = {}
        self._lock = threading.Lock()
        self._msg_desks: dict[str, CounterDesk] = {}
        try:
            for panel_settings in config.panels:
                display = (
                    displays.get(panel_settings.counter)
                    if displays is not None
                    else open_display(config, panel_settings)
                )
                self._add_desk(panel_settings, display)
            self.link = link if link is not None else _device_link(settings)
        except BaseException:
            self._close_desks()
            raise
        topics = self.link.topics
        for counter in self.desks:
            self.link.subscribe(topics.counter_state(counter), self._on_counter_state)
        if any(desk.panel.uses_queues for desk in self.desks.values()):
            # Every call changes a queue: a panel that shows none is spared the messages.
            self.link.subscribe(topics.queue(p.ANY), self._on_queue)
        self.link.subscribe(topics.hub_status(), self._on_hub_status)
        self.link.on_connection_change(self._on_connection)
        self.link.on_reply(self._on_reply)

    def _add_desk(self, panel_settings: PanelSettings, display: PanelDisplay | None) -> None:
        config = self.settings.counter
        panel = CounterPanel(
            panel_settings,
            config=config,
            pin_factory=self.factory,
            display=display,
        )
        desk = CounterDesk(
            panel,
            config=config,
            office=self.office,
            send=self._send,
            lang=self.settings.site.languages[0],
        )
        self.desks[desk.counter] = desk

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Show the offline state, start the buttons, and connect (in the background)."""
        for desk in self.desks.values():
            desk.start()
        self.link.start()

    def stop(self) -> None:
        """Disconnect (saying ``offline``), then release the pins and the displays.

        Commands not yet answered stay in the outbox for the next start.
        """
        self.link.stop()
        self._close_desks()

    def heartbeats(self) -> list[Heartbeat]:
        """The loops that must progress for the panel to be alive.

        Each panel's button thread, and the MQTT network thread.
        """
        buttons = [desk.panel.buttons.heartbeat for desk in self.desks.values()]
        return [*buttons, self.link.connection.heartbeat]

    def _close_desks(self) -> None:
        for desk in self.desks.values():
            desk.close()

    def __enter__(self) -> CounterTerminal:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- to the hub ----------------------------------------------------------------

    def _send(self, counter: str, command: Outgoing) -> None:
        desk = self.desks[counter]
        with self._lock:
            self._msg_desks[command.msg_id] = desk
        topics = self.link.topics
        is_rating = isinstance(command, p.CounterRating)
        topic = topics.counter_rating(counter) if is_rating else topics.counter_cmd(counter)
        try:
            self.link.send(topic, command)
        except BaseException:
            with self._lock:
                self._msg_desks.pop(command.msg_id, None)
            raise

    # -- from the hub (network and outbox threads) -----------------------------------

    def _on_reply(self, command: p.Request, reply: Reply) -> None:
        with self._lock:
            desk = self._msg_desks.pop(command.msg_id, None)
        if not isinstance(reply, p.ErrorReply | p.CommandReply | p.RatingReply):
            log.warning("a %s to counter command %s", type(reply).__name__, command.msg_id)
            return
        if desk is None or not desk.on_reply(command.msg_id, reply):
            # Queued before a restart: its press is applied; nobody waits for it here.
            what = reply.error.code if isinstance(reply, p.ErrorReply) else "done"
            log.info("answer to an earlier command %s: %s", command.msg_id, what)

    def _on_counter_state(self, topic: str, payload: bytes) -> None:
        try:
            state = p.decode(p.CounterState, payload)
        except p.ProtocolError as exc:
            log.warning("dropped a counter state on %s: %s", topic, exc.message)
            return
        desk = self.desks.get(state.counter)
        if desk is None or topic != self.link.topics.counter_state(desk.counter):
            log.warning("dropped a state of counter %s on %s", state.counter, topic)
            return
        desk.on_state(state)

    def _on_queue(self, topic: str, payload: bytes) -> None:
        try:
            queue = p.decode(p.QueueState, payload)
        except p.ProtocolError as exc:
            log.warning("dropped a queue state on %s: %s", topic, exc.message)
            return
        self.office.queues[queue.service] = queue
        self._refresh()

    def _on_hub_status(self, topic: str, payload: bytes) -> None:
        try:
            status = p.decode(p.DeviceStatus, payload)
        except p.ProtocolError as exc:
            log.warning("dropped the hub's status on %s: %s", topic, exc.message)
            return
        online = status.state == "online"
        if online != self.office.hub_online:
            log.log(
                logging.INFO if online else logging.WARNING,
                "the hub is %s",
                "online" if online else "offline: presses wait in the outbox",
            )
        self.office.hub_online = online
        self._refresh()

    def _on_connection(self, up: bool) -> None:
        self.office.connected = up
        if not up:
            self.office.hub_online = False  # known again from its retained status
        self._refresh()

    def _refresh(self) -> None:
        for desk in self.desks.values():
            desk.refresh()

    # -- simulated clerks ------------------------------------------------------------

    def clerks(self, *, seed: int | None = None) -> SimulatedClerks:
        """Simulated clerks pressing this terminal's mock pins (pin factory ``mock``)."""
        return SimulatedClerks(self.desks, rng=random.Random(seed))


def _open_factory(config: CounterSettings) -> PinFactory:
    return pin_factory(config.pin_factory)


def serve(terminal: CounterTerminal, stop: threading.Event, notifier: Notifier) -> None:
    """Serve until ``stop``, with simulated clerks if set.

    The button and network threads do the work; the systemd watchdog is pinged while
    they all make progress (:meth:`CounterTerminal.heartbeats`).
    """
    pace = terminal.settings.counter.simulate_clerks_s
    worker: threading.Thread | None = None
    if pace is not None:
        clerks = terminal.clerks()
        worker = threading.Thread(
            target=clerks.run, args=(stop, pace), name="simulated-clerks", daemon=True
        )
        worker.start()
    with Watchdog(notifier, terminal.heartbeats()) as watchdog:
        watchdog.ready(f"serving counters {', '.join(terminal.desks)}")
        stop.wait()
    notifier.stopping()
    if worker is not None:
        worker.join(timeout=5.0)


def run(settings: Settings) -> None:
    """Run the role until it is stopped."""
    terminal = CounterTerminal(settings)
    log.info(
        "counter panel %s for counters %s, pins from %s, broker %s:%d",
        settings.device.id,
        ", ".join(terminal.desks),
        settings.counter.pin_factory,
        settings.mqtt.host,
        settings.mqtt.port,
    )
    with terminal, stop_on_signals() as stop:
        gc.freeze()  # start-up's objects stay: full collections need not scan them (a pause)
        serve(terminal, stop, Notifier())
