"""The hub role: opens the queue, keeps it running, and tells systemd it is alive.

This is the wiring of the hub process: settings in, the store upgraded, the
service layer resumed from the database, the MQTT bridge, the web server and the
daily chores (pruning, the nightly backup) started beside it (each on its own
threads), then a main loop that rolls the queue over at midnight. The systemd
watchdog is pinged while both the main loop and the MQTT network thread make
progress (:mod:`common.liveness`).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from common.lifecycle import stop_on_signals
from common.liveness import BEAT_S, Heartbeat, Watchdog
from common.sdnotify import Notifier
from common.settings import Settings, redact_url
from hub import demo_office
from hub.alerts import Alerts
from hub.appointments import AppointmentBook
from hub.audit import AdminAudit
from hub.backup import HubLock
from hub.bridge import HubBridge
from hub.callboard import CallBoard
from hub.catalogue import CatalogueApplier
from hub.database import open_store
from hub.engine import QueuePolicy
from hub.eservice import EServices
from hub.feedback import Feedback
from hub.lockout import Lockout
from hub.mail import Mailer
from hub.maintenance import Maintenance
from hub.notify import Notices, load_vapid
from hub.publications import OUTBOX_FILE, HubLink
from hub.service import QueueService
from hub.signups import SignUps
from hub.siteconfig import SiteConfig
from hub.uplink import Uplink
from hub.users import ApiTokens, Users
from sync_agent.connection import Inbound

if TYPE_CHECKING:
    from flask import Blueprint, Flask

    from hub.web import Hub
    from hub.web.server import WebServer

log = logging.getLogger(__name__)

NO_SHOW_SWEEP_S = 60.0
"""How often the main loop marks the bookings nobody checked in as no-shows."""

SWITCH_INTERVAL_S = 0.001
"""How long a thread running Python code holds the interpreter before another may run.

The network thread answers the clerks' presses; each press hands the interpreter back and
forth a dozen times (socket reads and writes, SQLite). Behind a thread busy with Python
code (a portal page, the round of citizens' notices) it waits for its turn up to this
long at each hand-over: with Python's default of 5 ms, ``bench/notify.py`` measured a
press → call p99 of 60 ms beside the notices, with 1 ms 30 ms (8.6 ms alone)."""


def queue_policy(settings: Settings) -> QueuePolicy:
    """The engine's policy from the ``[queue]`` settings."""
    return QueuePolicy(
        max_calls=settings.queue.max_calls,
        transfer_keeps_arrival=settings.queue.transfer_keeps_arrival,
        service_time_window=settings.queue.service_time_window,
        max_kiosk_blocks=settings.queue.max_kiosk_blocks,
        checkin_early_s=settings.queue.checkin_early_min * 60,
        checkin_grace_s=settings.queue.checkin_grace_min * 60,
        call_window_s=settings.queue.appointment_call_window_min * 60,
        walk_in_target_wait_s=settings.web.target_wait_min * 60,
        appointment_share=settings.queue.appointment_share,
        share_window=settings.queue.appointment_share_window,
        cut_off_margin_s=settings.queue.cut_off_margin_min * 60,
    )


def open_queue(settings: Settings) -> QueueService:
    """Open the store and resume the queue where it stopped."""
    site = settings.site
    return QueueService.open(
        open_store(settings),
        timezone=site.tzinfo,
        policy=queue_policy(settings),
        country=site.country,
        holiday_lang=site.default_language,
    )


def db_upgrade(settings: Settings) -> str:
    """``poradovnik db upgrade``: migrate the database to this version's schema."""
    store = open_store(settings)
    store.close()
    return f"database {redact_url(settings.database_url)} is up to date"


def db_seed_demo(settings: Settings) -> str:
    """``poradovnik db seed --demo``: load the demo office's services and counters."""
    queue = open_queue(settings)
    try:
        seed_demo(queue)
    finally:
        queue.store.close()
    return (
        f"seeded the demo office: {len(demo_office.SERVICES)} services, "
        f"{len(demo_office.COUNTERS)} counters"
    )


def seed_demo(queue: QueueService) -> None:
    """Put the demo office's services and counters into ``queue`` (idempotent)."""
    for position, service in enumerate(demo_office.SERVICES):
        queue.save_service(service, position)
    for position, counter in enumerate(demo_office.COUNTERS):
        queue.save_counter(counter, position)


def feedback(settings: Settings, queue: QueueService) -> Feedback:
    """The citizens' ratings of the hub's queue, with ``[web] rating_window_h``."""
    window = timedelta(hours=settings.web.rating_window_h)
    return Feedback(queue.store, window=window, clock=queue.clock)


def start_bridge(settings: Settings, queue: QueueService) -> tuple[HubBridge, HubLink]:
    """Connect the queue to the office's broker; the link keeps itself connected.

    What the hub must not lose (calls, acknowledgements) waits in its outbox,
    ``[data] dir``/``hub-outbox.sqlite3``, until the broker has it.
    """
    link = HubLink(
        mqtt=settings.mqtt,
        site=settings.site.id,
        outbox_path=settings.data.dir / OUTBOX_FILE,
    )
    topics = link.topics
    bridge = HubBridge(queue, topics, link, EServices(queue.store), feedback(settings, queue))

    def deliver(message: Inbound) -> None:
        if message.retain and not message.payload:
            return  # a cleared retained message
        bridge.handle(
            message.topic,
            message.payload,
            response_topic=message.response_topic,
            correlation=message.correlation,
        )

    for topic_filter in bridge.inbound_filters():
        link.receive(topic_filter, deliver)
    # After every (re)connect the broker gets the whole retained state again.
    link.on_connect(bridge.publish_all)
    link.on_connection_change(
        lambda up: log.info(
            "broker %s:%d %s",
            settings.mqtt.host,
            settings.mqtt.port,
            "connected" if up else "disconnected",
        )
    )
    link.start()
    return bridge, link


# The web side is imported only where it is served: Flask is no part of the other
# commands (``poradovnik db …``).


def web_parts(
    settings: Settings,
    queue: QueueService,
    bridge: HubBridge | None = None,
    mailer: Mailer | None = None,
    notices: Notices | None = None,
    site: SiteConfig | None = None,
) -> Hub:
    """Build the hub's parts that the web side uses, and subscribe them to ``queue``.

    ``bridge`` (for the devices page) is ``None`` in a hub without MQTT; ``mailer``
    (booking confirmations; its queue ``/metrics`` shows) ``None`` in one that sends no
    e-mail; ``notices`` (citizens' notices) ``None`` where the portal offers none.
    """
    from hub.web import Hub  # noqa: PLC0415 (Flask only where served)
    from hub.web.live import LiveFeed  # noqa: PLC0415
    from hub.web.metrics import HubMetrics  # noqa: PLC0415

    web = settings.web
    feed = LiveFeed()
    display = settings.display
    board = CallBoard(
        queue,
        history=display.history,
        highlight_s=display.highlight_s,
        min_show_s=display.min_show_s,
        on_turn=feed.changed,
    )
    queue.subscribe(board.changed)  # before the feed: a page woken by it sees the new call
    queue.subscribe(feed.changed)
    metrics = HubMetrics(queue, bridge, mailer=mailer, metrics_from=web.metrics_from)
    queue.subscribe(metrics.changed)
    return Hub(
        settings=settings,
        queue=queue,
        feed=feed,
        board=board,
        users=Users(queue.store),
        tokens=ApiTokens(queue.store),
        eservices=bridge.eservices if bridge is not None else EServices(queue.store),
        config=site or SiteConfig(queue.store, settings),
        lockout=Lockout(
            queue.store,
            attempts=web.lockout_attempts,
            window=timedelta(minutes=web.lockout_window_min),
            duration=timedelta(minutes=web.lockout_min),
            clock=queue.clock,
        ),
        appointments=AppointmentBook(
            queue, per_address=web.bookings_per_address, per_email=web.bookings_per_email
        ),
        feedback=bridge.feedback if bridge is not None else feedback(settings, queue),
        signups=SignUps(queue.store),
        audit=AdminAudit(queue.store, queue.clock),
        bridge=bridge,
        metrics=metrics,
        mailer=mailer,
        notices=notices,
    )


def web_app(
    settings: Settings,
    queue: QueueService,
    *,
    bridge: HubBridge | None = None,
    mailer: Mailer | None = None,
    notices: Notices | None = None,
    site: SiteConfig | None = None,
    config: dict[str, Any] | None = None,
    extra: Iterable[Blueprint] = (),
) -> Flask:
    """The web app on the hub's ``queue`` (and ``bridge``, for the devices page).

    ``config`` overrides Flask settings (tests set ``TESTING`` and friends).
    """
    from hub.web import create_app  # noqa: PLC0415 (Flask only where served)

    parts = web_parts(settings, queue, bridge, mailer, notices, site)
    return create_app(parts, config=config, extra=extra)


def serve_web(
    settings: Settings,
    queue: QueueService,
    *,
    bridge: HubBridge | None = None,
    mailer: Mailer | None = None,
    notices: Notices | None = None,
    site: SiteConfig | None = None,
    port: int | None = None,
) -> WebServer:
    """Build the web app on the hub's parts and serve it on ``[web] host`` and ``port``.

    ``port`` overrides the settings' (0 picks a free one, as tests and benchmarks do).
    Raises :class:`~hub.web.server.WebError` when it cannot listen, or when the
    open-file limit is too low for ``[web] max_connections``.
    """
    from hub.web.server import serve as serve_app  # noqa: PLC0415 (Flask only where served)

    app = web_app(settings, queue, bridge=bridge, mailer=mailer, notices=notices, site=site)
    return serve_app(app, port=port)


def start_web(
    settings: Settings,
    queue: QueueService,
    bridge: HubBridge | None,
    mailer: Mailer | None = None,
    notices: Notices | None = None,
    site: SiteConfig | None = None,
) -> WebServer:
    """Start the web side (admin, portal, API) on ``[web] host`` and ``port``.

    ``site`` is the hub's one :class:`SiteConfig` (the notices' too), so that the
    branding the admin saves is what every part reads next.
    """
    server = serve_web(settings, queue, bridge=bridge, mailer=mailer, notices=notices, site=site)
    log.info("web pages on http://%s:%d/", settings.web.host, server.port)
    return server


def serve(
    queue: QueueService,
    stop: threading.Event,
    notifier: Notifier,
    watched: Iterable[Heartbeat] = (),
) -> None:
    """The hub's main loop: the midnight rollover until ``stop``.

    It checks for a new business day every :data:`~common.liveness.BEAT_S` (and every
    :data:`NO_SHOW_SWEEP_S` for bookings nobody checked in, which become no-shows), which
    also proves the queue is not stuck (the check takes the queue's lock), and beats
    its heartbeat. The watchdog is pinged while it and the ``watched`` loops (the MQTT
    network thread) all make progress.
    """
    main = Heartbeat("hub's main loop")
    with Watchdog(notifier, [main, *watched]) as watchdog:
        waiting = sum(status.waiting for status in queue.status())
        watchdog.ready(f"serving {len(queue.engine.services)} services, {waiting} waiting")
        next_sweep = 0.0
        while not stop.wait(BEAT_S):
            queue.roll_over()
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + NO_SHOW_SWEEP_S
                _sweep_no_shows(queue)
            main.beat()
    notifier.stopping()


def _sweep_no_shows(queue: QueueService) -> None:
    """Mark lapsed bookings; a failure is logged and tried again at the next sweep."""
    try:
        queue.sweep_no_shows()
    except Exception:
        log.exception("could not mark the bookings nobody checked in as no-shows")


def run_hub(settings: Settings) -> None:
    """``poradovnik hub``: run the hub until it is told to stop.

    The hub holds the database's :class:`~hub.backup.HubLock` while it runs: a second
    hub on the same database, or a restore, is refused.
    """
    with HubLock(settings.database_url):
        _run_hub(settings)


def _run_hub(settings: Settings) -> None:
    queue = open_queue(settings)
    engine = queue.engine
    log.info(
        "hub for site %s ready: %d services, %d counters, database %s",
        settings.site.id,
        len(engine.services),
        len(engine.counters),
        redact_url(settings.database_url),
    )
    if not engine.services:
        log.warning("no services are defined yet; try 'poradovnik db seed --demo'")
    bridge, link = start_bridge(settings, queue)
    mailer = Mailer(settings.mail).start()
    alerts = start_alerts(settings, mailer, bridge)
    chores = Maintenance(
        settings, queue.store, on_backup=alerts.backup_done if alerts else lambda _error: None
    )
    site = SiteConfig(queue.store, settings)
    notices = start_notifier(settings, queue, mailer, site)
    uplink = start_uplink(settings, queue)
    web = None
    try:
        chores.start()
        web = start_web(settings, queue, bridge, mailer if mailer.enabled else None, notices, site)
        # What start-up made lives as long as the hub: full collections no longer scan
        # it, so they take milliseconds, not a pause of every press for 100 ms or more.
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        with stop_on_signals() as stop:
            serve(queue, stop, Notifier(), [link.heartbeat])
    finally:
        chores.stop()
        if alerts is not None:
            alerts.stop()
        if notices is not None:
            notices.stop()
        if uplink is not None:
            uplink.stop()
        mailer.stop()
        if web is not None:
            web.stop()
        link.stop()
        queue.store.close()


def start_alerts(settings: Settings, mailer: Mailer, bridge: HubBridge) -> Alerts | None:
    """Start the e-mail alerts to ``[alerts] to``; ``None`` when there are none to send.

    They are off while ``[alerts] to`` is empty or mail is off (``[mail] host``).
    """
    if not settings.alerts.to:
        return None
    if not mailer.enabled:
        log.warning("[alerts] to is set, but no alerts are sent: [mail] host is not set")
        return None
    alerts = Alerts(settings, mailer, devices=lambda: dict(bridge.devices))
    bridge.on_device(alerts.device_heard)
    log.info("alerts go to %s", ", ".join(settings.alerts.to))
    return alerts.start()


def start_uplink(settings: Settings, queue: QueueService) -> Uplink | None:
    """Start sending the audit log to the city (``[uplink]``); ``None`` when not in one.

    With ``[uplink] catalogue`` the city's service catalogue is applied too.
    """
    if not settings.uplink.enabled:
        return None
    applier = None
    if settings.uplink.catalogue:
        audit = AdminAudit(queue.store, queue.clock)
        applier = CatalogueApplier(queue, audit, site=settings.site.id, clock=queue.clock)
    uplink = Uplink(queue.store, site=settings.site.id, mqtt=settings.mqtt, applier=applier)
    queue.subscribe(uplink.changed)
    return uplink.start()


def start_notifier(
    settings: Settings, queue: QueueService, mailer: Mailer, site: SiteConfig
) -> Notices | None:
    """Start citizens' notices (``[notify]``); ``None`` when they are off.

    The office's name in each notice is ``site``'s, as the admin last saved it.

    Web push is always on (its VAPID key is made in ``[data] dir`` on first start);
    e-mail while ``[mail] host`` is set; SMS while ``[notify] sms_url`` is.
    """
    if not settings.notify.enabled:
        return None
    notices = Notices(
        queue,
        settings.notify,
        mailer=mailer,
        vapid=load_vapid(settings.data.dir),
        public_url=settings.web.public_url,
        office_name=lambda: site.branding().office_name,
    )
    log.info("citizens' notices by %s", ", ".join(notices.channels))
    return notices.start()
