"""Benchmark: a tap on the kiosk's screen → the ticket's last byte at the printer.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/kiosk_print.py [--tickets 200]

It starts its own Mosquitto (generated configuration and accounts, in a temporary
directory, on a free port of 127.0.0.1), the hub (service layer on a temporary SQLite
database with its MQTT bridge, the demo office), a loopback network printer on
127.0.0.1 (:class:`~kiosk.loopback.LoopbackPrinter`, answering status
queries as a printer with paper), and the kiosk in a process of its own: the real
role (``build_kiosk``: device link with its outbox, offline book, python-escpos's
``Network`` printer) on SDL's dummy screen.

The kiosk process taps the services in turn by posting pygame mouse events, and
after each ticket it tells the time of the tap; the benchmark takes the time the
printer received the ticket's last byte (the cut). Both are ``time.perf_counter()``,
which on Linux is the system-wide monotonic clock. A tap covers the whole path: the
printer's status query, the hub's reply over MQTT, rendering, writing. The first
ten tickets warm up and are not counted. At the end the kiosk process reports its
peak resident memory.

The floors, measured in the same run: a raw TCP write of a rendered ticket to the
same loopback printer until its cut arrives, and a raw MQTT QoS 1 round trip through
the same broker. It prints p50 and p99 of each, the ratio of the p99s, whether the
targets are met, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import BenchError, percentiles, run_in_tempdir

from common.identity import HUB_DEVICE_ID
from common.kiosk_settings import KioskSettings, PrinterSettings
from common.settings import (
    DataSettings,
    DeviceSettings,
    MqttSettings,
    Settings,
    SiteSettings,
)
from kiosk.loopback import LoopbackPrinter
from sync_agent.protocol import Topics

SERVICES = ("taxes", "waste", "parking", "info")
"""The demo office's services, tapped in turn."""

SITE = "bench"
KIOSK = "kiosk-bench"
WARMUP = 10
TARGET_P99_MS = 100.0
TARGET_RSS_MB = 80.0
WAIT_S = 15.0
CUT = b"\x1dV\x00"
OK_REPLIES = {1: 0x16, 2: 0x12, 4: 0x12}


# -- the kiosk process ---------------------------------------------------------------


def kiosk_process(settings_json: str, tickets: int) -> None:
    """Run the kiosk and tap ``tickets`` times; one line per ticket, then the peak RSS."""
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    os.environ["SDL_AUDIODRIVER"] = "dummy"
    from common.sdl import pygame  # noqa: PLC0415 (after the SDL drivers are chosen)
    from kiosk.app import KioskApp, build_kiosk, open_screen  # noqa: PLC0415
    from kiosk.catalog import Catalog  # noqa: PLC0415
    from kiosk.ui import Screen  # noqa: PLC0415

    settings = Settings.model_validate_json(settings_json)
    catalogs = Catalog.load_all(settings.site.languages)
    kiosk = build_kiosk(settings, catalogs)
    screen = Screen(open_screen(settings), font_dir=settings.kiosk.font_dir, office="Bench")
    now = [0.0]
    app = KioskApp(kiosk, screen, catalogs, languages=settings.site.languages, clock=lambda: now[0])
    kiosk.start()
    deadline = time.monotonic() + WAIT_S
    while len(kiosk.services()) < 4 or not kiosk.online or not kiosk.refresh_blocks():
        kiosk.changed.wait(1.0)
        if time.monotonic() > deadline:
            raise BenchError("the kiosk did not hear the hub's services")
    app.draw()
    codes = SERVICES
    try:
        for n in range(tickets):
            button = next(b for b in screen.buttons if b.value == codes[n % len(codes)])
            event = pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=button.rect.center, button=1)
            tapped = time.perf_counter()
            pygame.event.post(event)
            app.step()
            app.step(wait_s=WAIT_S)
            outcome = app.outcome
            if app.state != "outcome" or outcome is None or not outcome.printed:
                raise BenchError(f"tap {n} gave no printed ticket: {outcome}")
            assert outcome.ticket is not None
            print(json.dumps({"tap": tapped, "number": outcome.ticket.number}), flush=True)
            sys.stdin.readline()  # the printer got it
            now[0] += 100  # past the confirmation: back to the start screen
            app.step()
            now[0] += 1  # past the double-tap guard
    finally:
        kiosk.stop()
    print(json.dumps({"peak_rss_kb": peak_rss_kb()}), flush=True)


def peak_rss_kb() -> int:
    """This process's peak resident memory (``VmHWM``), in KiB.

    Not ``getrusage``'s ``ru_maxrss``: on Linux that keeps the parent's peak across
    fork and exec, so a child started by a large benchmark would report the
    benchmark's memory, not its own.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise BenchError("no VmHWM in /proc/self/status")


# -- the office ----------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    """What one run measured; times in seconds."""

    latencies: list[float]
    tcp_floor: list[float]
    mqtt_floor: list[float]
    peak_rss_mb: float


def kiosk_settings(directory: Path, mqtt: MqttSettings, printer_port: int) -> str:
    """The kiosk's settings as JSON (with its password, which a plain dump would mask)."""
    settings = Settings(
        role="kiosk",
        site=SiteSettings(id=SITE),
        mqtt=mqtt,
        data=DataSettings(dir=directory),
        device=DeviceSettings(id=KIOSK),
        kiosk=KioskSettings(
            width=800,
            height=480,
            fullscreen=False,
            portal_url="https://portal.example",
            printer=PrinterSettings(backend="network", host="127.0.0.1", port=printer_port),
        ),
    )
    data: dict[str, Any] = settings.model_dump(mode="json")
    assert mqtt.password is not None
    data["mqtt"]["password"] = mqtt.password.get_secret_value()
    return json.dumps(data)


def tcp_floor(port: int, ticket: bytes, samples: int, printer: LoopbackPrinter) -> list[float]:
    """Raw TCP: write a ticket's bytes to the printer until its cut has arrived."""
    times = []
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(WARMUP + samples):
            start = len(printer.data)
            began = time.perf_counter()
            raw.sendall(ticket)
            if not printer.wait_for(CUT, WAIT_S, start=start):
                raise BenchError("the raw ticket did not arrive")
            times.append(printer.last_byte_at - began)
            printer.take()
    return times[WARMUP:]


def sample_ticket() -> bytes:
    """A rendered ticket like the kiosk's, for the TCP floor."""
    from kiosk.catalog import Catalog  # noqa: PLC0415
    from kiosk.fonts import font_path  # noqa: PLC0415
    from kiosk.printer import PrintedTicket, SimulatedTransport, TicketPrinter  # noqa: PLC0415

    settings = KioskSettings()
    printer = TicketPrinter(
        transport=SimulatedTransport(profile=settings.printer.profile, file=None),
        profile=settings.printer.profile,
        catalogs=Catalog.load_all(),
        font=font_path(settings.font_dir),
        office="Mestský úrad",
        portal_url="https://portal.example",
    )
    ticket = PrintedTicket("0" * 32, "A042", "Miestne dane", datetime.now(UTC), 3, 840, "sk")
    return printer.render(ticket)


def measure(directory: Path, tickets: int) -> Figures:
    """Run the office, the floors and the kiosk; stop everything, also on Ctrl+C."""
    # The hub's modules are imported here: the kiosk process (this file too) must not
    # load SQLAlchemy and the rest, or its memory would not be a kiosk's.
    from sync import round_trips  # noqa: PLC0415 (bench/sync.py: the raw MQTT round trip)

    from hub.app import open_queue, seed_demo, start_bridge  # noqa: PLC0415
    from hub.broker import local_broker  # noqa: PLC0415

    roles: list[tuple[str, Any, dict[str, Any]]] = [
        (HUB_DEVICE_ID, "hub", {"device_id": HUB_DEVICE_ID}),
        (KIOSK, "kiosk", {"device_id": KIOSK}),
    ]
    with ExitStack() as stack:
        broker = stack.enter_context(local_broker(directory / "broker", SITE, roles))
        accounts = broker.accounts
        hub_settings = Settings(
            role="hub",
            site=SiteSettings(id=SITE),
            mqtt=accounts[HUB_DEVICE_ID],
            data=DataSettings(dir=directory / "hub"),
        )
        queue = open_queue(hub_settings)
        stack.callback(queue.store.close)
        seed_demo(queue)
        _, link = start_bridge(hub_settings, queue)
        stack.callback(link.stop)
        if not link.connection.subscribed.wait(WAIT_S):
            raise BenchError("the hub did not subscribe at the broker")
        printer = stack.enter_context(LoopbackPrinter(OK_REPLIES))
        floor_tcp = tcp_floor(printer.port, sample_ticket(), tickets, printer)
        payload = json.dumps({"v": 1, "sample": "x" * 200}).encode()
        floor_mqtt = round_trips(
            accounts[HUB_DEVICE_ID], f"{Topics(SITE).base}/bench", tickets, payload
        )
        child = subprocess.Popen(
            [sys.executable, __file__, "--kiosk-process", str(WARMUP + tickets)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "PORADOVNIK_BENCH_SETTINGS": kiosk_settings(
                    directory / "kiosk", accounts[KIOSK], printer.port
                ),
            },
        )
        stack.callback(child.kill)
        assert child.stdin is not None
        assert child.stdout is not None
        latencies: list[float] = []
        for _ in range(WARMUP + tickets):
            line = child.stdout.readline()
            if not line:
                raise BenchError(f"the kiosk process ended early (exit {child.wait()})")
            tap = json.loads(line)
            if not printer.wait_for(CUT, WAIT_S):
                raise BenchError(f"ticket {tap['number']} did not reach the printer")
            latencies.append(printer.last_byte_at - tap["tap"])
            printer.take()
            child.stdin.write("\n")
            child.stdin.flush()
        peak = json.loads(child.stdout.readline())["peak_rss_kb"] / 1024
        child.wait(timeout=WAIT_S)
        return Figures(latencies[WARMUP:], floor_tcp, floor_mqtt, peak)


def report(figures: Figures, tickets: int) -> None:
    """Print the figures as text, then as one JSON line."""
    p50, p99 = (v * 1000 for v in percentiles(figures.latencies))
    tcp50, tcp99 = (v * 1000 for v in percentiles(figures.tcp_floor))
    mq50, mq99 = (v * 1000 for v in percentiles(figures.mqtt_floor))
    floor99 = tcp99 + mq99
    ratio = p99 / floor99
    met = p99 <= TARGET_P99_MS and figures.peak_rss_mb <= TARGET_RSS_MB

    def line(name: str, a: float, b: float, what: str) -> None:
        print(f"{name:7} p50 {a:7.2f} ms  p99 {b:7.2f} ms  {what}")

    line("kiosk:", p50, p99, f"tap → last ticket byte at the printer, {tickets} tickets")
    line("tcp:", tcp50, tcp99, "raw TCP write of a ticket → its last byte (floor)")
    line("mqtt:", mq50, mq99, "raw MQTT QoS 1 round trip (floor)")
    print(f"memory: kiosk process peak RSS {figures.peak_rss_mb:.1f} MB")
    print(
        f"ratio: {ratio:.1f}× the floors' p99 (tcp + mqtt); targets p99 ≤ {TARGET_P99_MS:.0f} ms "
        f"and ≤ {TARGET_RSS_MB:.0f} MB RSS: {'met' if met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "bench": "kiosk",
                "tickets": tickets,
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "tcp_floor_p50_ms": round(tcp50, 3),
                "tcp_floor_p99_ms": round(tcp99, 3),
                "mqtt_floor_p50_ms": round(mq50, 3),
                "mqtt_floor_p99_ms": round(mq99, 3),
                "ratio_p99": round(ratio, 2),
                "peak_rss_mb": round(figures.peak_rss_mb, 1),
                "target_p99_ms": TARGET_P99_MS,
                "target_rss_mb": TARGET_RSS_MB,
                "target_met": met,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200, help="measured tickets")
    parser.add_argument("--kiosk-process", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.kiosk_process is not None:
        kiosk_process(os.environ["PORADOVNIK_BENCH_SETTINGS"], args.kiosk_process)
        return
    if not 10 <= args.tickets <= 2000:
        parser.error("--tickets must be from 10 to 2000")
    figures = run_in_tempdir(
        lambda tmp: measure(tmp, args.tickets), "the broker, the hub and the kiosk"
    )
    report(figures, args.tickets)


if __name__ == "__main__":
    main()
