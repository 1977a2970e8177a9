"""``/metrics``: scraped from the app and from the real server, parsed by prometheus_client."""

from __future__ import annotations

import queue
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from flask import Flask
from mail_helpers import smtp_server
from office_helpers import RunningHub
from prometheus_client.parser import text_string_to_metric_families

from common.settings import Settings, WebSettings
from hub.app import serve_web, web_app
from hub.bridge import DeviceView
from hub.mail import Mailer
from hub.service import QueueService
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

WAIT_S = 10.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def with_web(settings: Settings, **web: object) -> Settings:
    """``settings`` with other ``[web]`` settings (validated)."""
    changed = WebSettings.model_validate({**settings.web.model_dump(), **web})
    return settings.model_copy(update={"web": changed})


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def scrape(app: Flask, remote: str = "127.0.0.1", **headers: str) -> Samples:
    answer = app.test_client().get(
        "/metrics", environ_base={"REMOTE_ADDR": remote}, headers=headers
    )
    assert answer.status_code == 200, answer.status
    assert answer.mimetype == "text/plain"
    assert answer.headers["Cache-Control"] == "no-store"
    return parse(answer.get_data(as_text=True))


def test_the_queue_calls_and_request_latencies_are_exposed(
    app: Flask, web_queue: QueueService
) -> None:
    for service in ("taxes", "taxes", "waste"):
        web_queue.issue(service)
    web_queue.counter_action("2", "next")  # counter 2 serves taxes
    web_queue.counter_action("2", "recall")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-page").status_code == 404
    samples = scrape(app)
    assert value(samples, "poradovnik_waiting_tickets", service="taxes") == 1
    assert value(samples, "poradovnik_waiting_tickets", service="waste") == 1
    assert value(samples, "poradovnik_waiting_tickets", service="parking") == 0
    assert value(samples, "poradovnik_issued_today", service="taxes") == 2
    assert value(samples, "poradovnik_open_counters", service="taxes") >= 1
    assert value(samples, "poradovnik_calls_total", service="taxes") == 2  # call and recall
    assert ("poradovnik_calls_total", frozenset({("service", "waste")})) not in samples
    latency = "poradovnik_http_request_duration_seconds"
    assert value(samples, f"{latency}_count", route="/healthz", status="2xx") == 3
    assert value(samples, f"{latency}_bucket", route="/healthz", status="2xx", le="+Inf") == 3
    assert value(samples, f"{latency}_count", route="(unmatched)", status="4xx") == 1
    # Without MQTT or mail: no devices, and no outbox to show.
    assert not [
        key for key in samples if key[0] in {"poradovnik_devices", "poradovnik_outbox_messages"}
    ]


@pytest.mark.parametrize("remote", ["192.0.2.7", "10.1.2.3", "::ffff:192.0.2.7", "fe80::1", ""])
def test_other_addresses_get_404(app: Flask, remote: str) -> None:
    answer = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": remote})
    assert answer.status_code == 404
    assert b"poradovnik_" not in answer.get_data()


def test_a_forged_forwarded_for_does_not_open_it(app: Flask) -> None:
    # No proxy is trusted ([web] proxy_hops = 0): the header is the client's word only.
    answer = app.test_client().get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
        headers={"X-Forwarded-For": "127.0.0.1"},
    )
    assert answer.status_code == 404


def test_behind_the_proxy_the_client_address_counts(
    web_settings: Settings, web_queue: QueueService
) -> None:
    settings = with_web(
        web_settings,
        proxy_hops=1,
        public_url="https://poradovnik.example",
        metrics_from=("10.0.0.0/8",),
    )
    app = web_app(settings, web_queue, config={"TESTING": True})
    # The proxy itself (loopback) asks for a client outside the networks: refused.
    client = app.test_client()
    refused = client.get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "192.0.2.7"},
    )
    assert refused.status_code == 404
    # A forged first hop does not help: only the proxy's own (last) entry is trusted.
    forged = client.get(
        "/metrics",
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "10.0.0.1, 192.0.2.7"},
    )
    assert forged.status_code == 404
    samples = scrape(app, "127.0.0.1", **{"X-Forwarded-For": "10.9.8.7"})
    assert ("poradovnik_waiting_tickets", frozenset({("service", "taxes")})) in samples


def test_nobody_may_read_it_with_an_empty_list(
    web_settings: Settings, web_queue: QueueService
) -> None:
    settings = with_web(web_settings, metrics_from=())
    app = web_app(settings, web_queue, config={"TESTING": True})
    answer = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert answer.status_code == 404


def test_devices_printers_and_outboxes_from_a_real_broker(
    hub: RunningHub, device: Callable[..., DeviceLink], web_settings: Settings
) -> None:
    heard: queue.Queue[DeviceView] = queue.Queue()
    hub.bridge.on_device(heard.put)
    kiosk = device("kiosk-k1")
    device("display-d1")
    kiosk.publish_health({"printer": p.PartHealth(state="paper_out")})
    seen: set[str] = set()
    while not {"k1", "d1"} <= seen:
        view = heard.get(timeout=WAIT_S)
        if view.status is not None and (view.device_id != "k1" or view.health is not None):
            seen.add(view.device_id)
    with smtp_server() as inbox:
        mailer = Mailer(inbox.settings())  # not started: what is sent waits
        app = web_app(
            web_settings, hub.queue, bridge=hub.bridge, mailer=mailer, config={"TESTING": True}
        )
        samples = scrape(app)
    assert value(samples, "poradovnik_devices", role="kiosk", state="online") == 1
    assert value(samples, "poradovnik_devices", role="display", state="online") == 1
    assert (
        value(
            samples, "poradovnik_device_part_state", device="k1", part="printer", state="paper_out"
        )
        == 1
    )
    assert value(samples, "poradovnik_outbox_messages", outbox="mqtt") >= 0
    assert value(samples, "poradovnik_outbox_messages", outbox="mail") == 0
    assert value(samples, "poradovnik_mail_total", outcome="sent") == 0


REQUESTS = 10
"""Requests for a cacheable page: the first (or first few) go to Flask, the rest are replayed."""


def test_the_real_server_serves_it_and_times_cached_answers(
    web_settings: Settings, web_queue: QueueService
) -> None:
    server = serve_web(web_settings, web_queue, port=0)
    base = f"http://127.0.0.1:{server.port}"
    try:
        for _ in range(REQUESTS):
            with urllib.request.urlopen(f"{base}/queue/fragment", timeout=WAIT_S) as answer:
                assert answer.status == 200
        with urllib.request.urlopen(f"{base}/metrics", timeout=WAIT_S) as answer:
            samples = parse(answer.read().decode())
    finally:
        server.stop()
    latency = "poradovnik_http_request_duration_seconds_count"
    assert value(samples, latency, route="/queue/fragment", status="2xx") >= 1
    assert value(samples, latency, route="(cached)", status="2xx") >= 1
    total = value(samples, latency, route="/queue/fragment", status="2xx") + value(
        samples, latency, route="(cached)", status="2xx"
    )
    assert total == REQUESTS


def test_the_real_server_refuses_a_scrape_from_another_address(
    web_settings: Settings, web_queue: QueueService
) -> None:
    settings = with_web(web_settings, metrics_from=("10.0.0.0/8",))
    server = serve_web(settings, web_queue, port=0)
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=WAIT_S)
        assert refused.value.code == 404
    finally:
        server.stop()
