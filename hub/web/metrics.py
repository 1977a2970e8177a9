"""``/metrics``: the hub's figures for Prometheus, to the addresses of ``[web] metrics_from``.

:class:`HubMetrics` is a Prometheus collector of its own registry. What the
queue and the devices are is read when Prometheus asks, never on the queue's
path: tickets waiting per service, counters open, devices by role and state,
each device part's state (printers' paper), the outboxes' depths (the hub's
durable MQTT outbox, the e-mail queue). Two things are counted as they happen:
calls, by a queue listener that only adds to a dictionary, and the requests'
latencies, a histogram per route (the URL rule, never the raw path) and status
class. Answers replayed from the response cache on the event loop count under
the route ``(cached)``; live streams are not timed.

Anyone else asking gets 404, as for a page that does not exist; the asking
address is the client's as ``[web] proxy_hops`` makes it (Werkzeug's ProxyFix).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Final

from flask import Flask, Response, abort, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.messages import CALL_ACTIONS
from hub.model import Change
from hub.publications import HubLink
from hub.service import QueueService

if TYPE_CHECKING:
    from hub.bridge import HubBridge
    from hub.mail import Mailer

__all__ = ["CACHED_ROUTE", "HubMetrics", "Networks", "allowed"]

CACHED_ROUTE: Final = "(cached)"
"""The route label of answers replayed from the response cache."""

UNMATCHED_ROUTE: Final = "(unmatched)"
"""The route label of requests for no page (404s, wrong hosts)."""

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""The request latency histogram's buckets, in seconds."""

_STARTED: Final = "poradovnik_metrics_started"

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
"""The networks that may read ``/metrics``."""


def allowed(address: str | None, networks: Networks) -> bool:
    """Whether the client ``address`` is in one of ``networks``."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


class HubMetrics(Collector):
    """The hub's figures, as one Prometheus registry (``registry``)."""

    def __init__(
        self,
        queue: QueueService,
        bridge: HubBridge | None = None,
        *,
        mailer: Mailer | None = None,
        metrics_from: Iterable[str] = (),
    ) -> None:
        self.queue = queue
        self.bridge = bridge
        self.mailer = mailer
        self.networks: Networks = tuple(
            ipaddress.ip_network(net, strict=False) for net in metrics_from
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Histogram(
            "poradovnik_http_request_duration_seconds",
            "Time from a request's arrival at the web app to its answer, by route and status "
            "class.",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, int], Histogram] = {}
        """The histogram's series by route and status class (``labels`` takes a lock)."""
        self._calls: dict[str, int] = {}
        self.registry.register(self)

    # -- counted as it happens --------------------------------------------------------

    def changed(self, change: Change) -> None:
        """A queue listener: count the calls (and recalls) a change made, per service."""
        for event in change.events:
            if event.action in CALL_ACTIONS and event.ticket_id:
                service = change.ticket(event.ticket_id).service
                self._calls[service] = self._calls.get(service, 0) + 1

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one answered request (a dictionary look-up and the histogram's observe)."""
        key = (route, status // 100)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(route, f"{key[1]}xx")
        child.observe(seconds)

    # -- read when asked ----------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """The figures as of now (Prometheus' collector interface)."""
        waiting = GaugeMetricFamily(
            "poradovnik_waiting_tickets", "Tickets waiting now, per service.", labels=["service"]
        )
        open_counters = GaugeMetricFamily(
            "poradovnik_open_counters", "Counters open for a service now.", labels=["service"]
        )
        issued = GaugeMetricFamily(
            "poradovnik_issued_today", "Tickets issued today, per service.", labels=["service"]
        )
        for status in self.queue.status():
            code = status.service.code
            waiting.add_metric([code], status.waiting)
            open_counters.add_metric([code], status.open_counters)
            issued.add_metric([code], status.issued_today)
        yield from (waiting, open_counters, issued)
        calls = CounterMetricFamily(
            "poradovnik_calls",
            "Calls and recalls since the hub started, per service.",
            labels=["service"],
        )
        for code, count in sorted(dict(self._calls).items()):
            calls.add_metric([code], count)
        yield calls
        yield from self._devices()
        yield from self._outboxes()

    def _devices(self) -> Iterator[Metric]:
        devices = GaugeMetricFamily(
            "poradovnik_devices",
            "Devices the hub has heard of since it started, by role and state (online, offline).",
            labels=["role", "state"],
        )
        parts = GaugeMetricFamily(
            "poradovnik_device_part_state",
            "Each device part's reported state (1 for the state it is in), e.g. a "
            "printer's paper_near_end.",
            labels=["device", "part", "state"],
        )
        counts: dict[tuple[str, str], int] = {}
        views = dict(self.bridge.devices) if self.bridge is not None else {}
        for device_id, view in sorted(views.items()):
            status = view.status
            if status is None:
                continue
            key = (status.role or "unknown", status.state)
            counts[key] = counts.get(key, 0) + 1
            if view.health is not None:
                for part, health in sorted(view.health.parts.items()):
                    parts.add_metric([device_id, part, health.state], 1)
        for (role, state), count in sorted(counts.items()):
            devices.add_metric([role, state], count)
        yield devices
        yield parts

    def _outboxes(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "poradovnik_outbox_messages",
            "Messages waiting to go out: mqtt (the hub's durable outbox, until the broker "
            "has them), mail (e-mail until the SMTP server accepts it).",
            labels=["outbox"],
        )
        publisher = self.bridge.publisher if self.bridge is not None else None
        if isinstance(publisher, HubLink):
            depth.add_metric(["mqtt"], publisher.undelivered)
        if self.mailer is not None:
            depth.add_metric(["mail"], self.mailer.pending)
        yield depth
        if self.mailer is not None:
            mail = CounterMetricFamily(
                "poradovnik_mail", "E-mail since the hub started, by outcome.", labels=["outcome"]
            )
            mail.add_metric(["sent"], self.mailer.sent)
            mail.add_metric(["failed"], self.mailer.failed)
            yield mail

    # -- the web side -------------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Time every request of ``app`` and serve ``/metrics`` there."""
        app.before_request(_start_timer)
        app.after_request(self._stop_timer)
        app.add_url_rule("/metrics", "metrics", self._view)

    def _stop_timer(self, response: Response) -> Response:
        started = g.pop(_STARTED, None)
        if started is not None:
            rule = request.url_rule
            route = rule.rule if rule is not None else UNMATCHED_ROUTE
            self.observe(route, response.status_code, time.perf_counter() - started)
        return response

    def _view(self) -> Response:
        if not allowed(request.remote_addr, self.networks):
            abort(404)
        return Response(
            generate_latest(self.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
        )


def _start_timer() -> None:
    setattr(g, _STARTED, time.perf_counter())
