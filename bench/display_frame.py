"""Benchmark: the lobby display at 1920×1080: call → frame latency, CPU and memory.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/display_frame.py [--seconds 60]

It starts its own Mosquitto (generated configuration and accounts, in a temporary
directory, on a free port of 127.0.0.1) and the display as a process of its own, as
``poradovnik display`` runs it (``display.app``), with SDL's dummy video
driver at 1920×1080, sound written to WAV files (chime and espeak-ng speech, sk and
en) and two emulated LED boards. The benchmark plays the hub: it publishes the hub's
retained ``online`` status and the four services' queue states, then ``calls``.

The display process (``bench/display_frame_child.py``, which imports only what a display
Pi has) reports each frame it draws through the frame hook of
:func:`display.app.run` (no sleeps, no polling of the screen): one line
on its stdout with the ticket now shown and ``time.monotonic()``, which is one clock
for both processes. Latency runs from just before the benchmark publishes a call to
the end of ``pygame.display.update`` of the first frame showing that number.

Phases, ``--seconds`` each (60 by default; shorter for a quick run):

- idle: no calls; only the clock and the link are alive;
- calls: a call every 2 s. The display's minimum show time is 1 s here (6 s by
  default), shorter than the interval, so each call becomes current at once: the
  waiting the sequencer adds on purpose is not render latency.

For each phase it reads the display's CPU time (``utime + stime`` of
``/proc/<pid>/stat``, as a share of one core; espeak-ng runs as a child process and
is shown apart) and its resident memory (the largest ``VmRSS`` of
``/proc/<pid>/status``, sampled each second).

The floor, in the same run: a raw MQTT QoS 1 round trip through the same broker
(two paho clients), and a bare pygame full frame (fill, one large text, flip) at
1920×1080 on the dummy driver. Prints the figures, the ratio of the latency's p99 to
the floor's (round trip + frame) and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import BenchError, percentiles, run_in_tempdir
from sync import round_trips  # bench/sync.py: the same floor

from common.identity import HUB_DEVICE_ID
from common.settings import MqttSettings
from hub import demo_office
from hub.broker import local_broker
from sync_agent import protocol as p
from sync_agent.broker_accounts import Role
from sync_agent.connection import MqttConnection

SITE = "bench"
DISPLAY = "bench-display"
WIDTH, HEIGHT = 1920, 1080
CALL_EVERY_S = 2.0
WAIT_S = 20.0

TARGET_P99_MS = 50.0
TARGET_IDLE_CPU = 0.03
TARGET_RSS_MB = 100.0

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the display process ----------------------------------------------------------------


def display_config(directory: Path, mqtt: MqttSettings) -> Path:
    """The display's settings file for the run."""
    password = mqtt.password.get_secret_value() if mqtt.password is not None else ""
    path = directory / "display.toml"
    path.write_text(
        f"""role = "display"
[site]
id = "{SITE}"
languages = ["sk", "en"]
[mqtt]
host = "{mqtt.host}"
port = {mqtt.port}
username = "{mqtt.username}"
password = "{password}"
[device]
id = "{DISPLAY}"
[data]
dir = "{directory}"
[logging]
level = "WARNING"
[display]
video_driver = "dummy"
width = {WIDTH}
height = {HEIGHT}
fullscreen = false
sound = "wav"
min_show_s = 1.0
boards_backend = "simulated"
[[display.boards]]
address = 1
counter = "1"
[[display.boards]]
address = 9
hall = true
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Child:
    """The display process and what it reported."""

    process: subprocess.Popen[str]
    frames: queue.Queue[tuple[str, float]] = field(default_factory=queue.Queue)
    connected: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            kind, *rest = line.split()
            if kind == "connected":
                self.connected.set()
            elif kind == "frame":
                self.frames.put((rest[0], float(rest[1])))

    def cpu_s(self) -> tuple[float, float]:
        """The process's own CPU seconds, and its waited-for children's."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
        return (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise BenchError("no VmRSS for the display process")


@contextmanager
def display_process(config: Path) -> Iterator[Child]:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("display_frame_child.py")), str(config)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    running = Child(process)
    threading.Thread(target=running.read, daemon=True).start()
    try:
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()


# -- the hub's side ------------------------------------------------------------------


def publish_office(hub: MqttConnection, topics: p.Topics) -> None:
    """The hub's retained online status and the services' queue states."""
    now = datetime.now(UTC)
    status = p.DeviceStatus(state="online", role="hub", version="bench", at=now)
    hub.publish(topics.device_status(HUB_DEVICE_ID), status.encode(), retain=True)
    for n, service in enumerate(demo_office.SERVICES):
        state = p.QueueState(
            service=service.code,
            prefix=service.prefix,
            names=dict(service.names),
            open=True,
            hours="Mon-Fri 08:00-15:00",
            waiting=3 + n,
            estimated_wait_s=300 * (n + 1),
            issued_today=40,
            daily_limit=None,
            open_counters=2,
            at=now,
        )
        hub.publish(topics.queue(service.code), state.encode(), retain=True)


def call(n: int) -> p.Call:
    return p.Call(
        ticket=f"A{n % 1000:03d}",
        ticket_id=uuid.uuid4().hex,
        counter=str(1 + n % 5),
        counter_name=f"Okienko {1 + n % 5}",
        service="taxes",
        called_at=datetime.now(UTC),
        recall=False,
        calls=1,
    )


@dataclass
class Phase:
    """One phase's CPU share of one core, its children's, and its largest RSS."""

    cpu: float
    children_cpu: float
    rss_mb: float


def watch(display: Child, seconds: float, tick: threading.Event) -> Phase:
    """Measure ``seconds`` of the display's life; ``tick`` is set each second (calls)."""
    began = time.monotonic()
    own0, kids0 = display.cpu_s()
    rss = display.rss_mb()
    deadline = began + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        rss = max(rss, display.rss_mb())
        tick.set()
    own1, kids1 = display.cpu_s()
    wall = time.monotonic() - began
    return Phase((own1 - own0) / wall, (kids1 - kids0) / wall, rss)


def calls_phase(
    display: Child, hub: MqttConnection, topics: p.Topics, seconds: float
) -> tuple[Phase, list[float]]:
    """A call every 2 s while measuring; return the phase and each call → frame latency."""
    latencies: list[float] = []
    errors: list[str] = []
    stop = threading.Event()

    def caller() -> None:
        n = 1
        next_at = time.monotonic()
        while not stop.is_set():
            if stop.wait(max(0.0, next_at - time.monotonic())):
                return
            message = call(n)
            sent = time.monotonic()
            hub.publish(topics.calls(), message.encode())
            try:
                while True:
                    ticket, at = display.frames.get(timeout=WAIT_S)
                    if ticket == message.ticket:
                        latencies.append(at - sent)
                        break
            except queue.Empty:
                errors.append(f"no frame showed {message.ticket}")
                return
            n += 1
            next_at += CALL_EVERY_S

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    phase = watch(display, seconds, threading.Event())
    stop.set()
    thread.join(timeout=WAIT_S)
    if errors:
        raise BenchError(errors[0])
    return phase, latencies


# -- the floor: a bare pygame frame ---------------------------------------------------


def bare_frames(samples: int) -> list[float]:
    """Fill, render one large text and flip a 1920×1080 screen, one at a time, in s."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame  # noqa: PLC0415

    pygame.display.init()
    pygame.font.init()
    try:
        screen = pygame.display.set_mode((WIDTH, HEIGHT))
        font = pygame.font.Font("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 300)
        times = []
        for n in range(samples + 5):
            began = time.perf_counter()
            screen.fill((12, 27, 51))
            screen.blit(font.render(f"A{n:03d}", True, (255, 255, 255)), (100, 300))
            pygame.display.flip()
            times.append(time.perf_counter() - began)
        return times[5:]
    finally:
        pygame.display.quit()


# -- the run -------------------------------------------------------------------------


def measure(directory: Path, seconds: float) -> dict[str, object]:
    logins: list[tuple[str, Role, dict[str, Any]]] = [
        (HUB_DEVICE_ID, "hub", {"device_id": HUB_DEVICE_ID}),
        (DISPLAY, "display", {"device_id": DISPLAY}),
    ]
    with local_broker(directory / "broker", SITE, logins) as broker:
        accounts = broker.accounts
        topics = p.Topics(SITE)
        hub = MqttConnection(mqtt=accounts[HUB_DEVICE_ID], client_id="bench-hub")
        hub.start()
        try:
            if not hub.connected.wait(WAIT_S):
                raise BenchError("the benchmark's hub did not connect")
            publish_office(hub, topics)
            config = display_config(directory, accounts[DISPLAY])
            with display_process(config) as display:
                if not display.connected.wait(WAIT_S * 3):
                    raise BenchError("the display did not start and hear the hub")
                idle = watch(display, seconds, threading.Event())
                busy, latencies = calls_phase(display, hub, topics, seconds)
            sample = call(1).encode()
            floor_mqtt = round_trips(
                accounts[HUB_DEVICE_ID], f"{topics.base}/bench/floor", len(latencies), sample
            )
        finally:
            hub.stop()
    floor_frame = bare_frames(len(latencies))
    p50, p99 = (v * 1000 for v in percentiles(latencies))
    mqtt50, mqtt99 = (v * 1000 for v in percentiles(floor_mqtt))
    frame50, frame99 = (v * 1000 for v in percentiles(floor_frame))
    return {
        "bench": "display",
        "seconds": seconds,
        "resolution": f"{WIDTH}x{HEIGHT}",
        "calls": len(latencies),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "floor_mqtt_p50_ms": round(mqtt50, 3),
        "floor_mqtt_p99_ms": round(mqtt99, 3),
        "floor_frame_p50_ms": round(frame50, 2),
        "floor_frame_p99_ms": round(frame99, 2),
        "ratio_p99": round(p99 / (mqtt99 + frame99), 2),
        "idle_cpu": round(idle.cpu, 4),
        "idle_children_cpu": round(idle.children_cpu, 4),
        "idle_rss_mb": round(idle.rss_mb, 1),
        "calls_cpu": round(busy.cpu, 4),
        "calls_children_cpu": round(busy.children_cpu, 4),
        "calls_rss_mb": round(busy.rss_mb, 1),
        "target_p99_ms": TARGET_P99_MS,
        "target_idle_cpu": TARGET_IDLE_CPU,
        "target_rss_mb": TARGET_RSS_MB,
        "target_met": p99 <= TARGET_P99_MS
        and idle.cpu <= TARGET_IDLE_CPU
        and max(idle.rss_mb, busy.rss_mb) <= TARGET_RSS_MB,
    }


def report(figures: dict[str, object]) -> None:
    f = figures
    print(
        f"display: p50 {f['p50_ms']:7.2f} ms  p99 {f['p99_ms']:7.2f} ms  call published → frame "
        f"showing it, {f['calls']} calls, {f['resolution']}"
    )
    print(
        f"floor:   p50 {f['floor_mqtt_p50_ms']:7.3f} ms  p99 {f['floor_mqtt_p99_ms']:7.3f} ms  "
        "raw MQTT QoS 1 round trip"
    )
    print(
        f"floor:   p50 {f['floor_frame_p50_ms']:7.2f} ms  p99 {f['floor_frame_p99_ms']:7.2f} ms  "
        "bare pygame full frame (fill, text, flip)"
    )
    print(f"ratio:   {f['ratio_p99']}× the floors' p99 (round trip + frame)")
    for phase in ("idle", "calls"):
        print(
            f"{phase + ':':8} CPU {float(f[f'{phase}_cpu']):6.2%} of one core (espeak-ng "  # type: ignore[arg-type]
            f"{float(f[f'{phase}_children_cpu']):.2%}), RSS {f[f'{phase}_rss_mb']} MB "  # type: ignore[arg-type]
            f"over {f['seconds']:.0f} s"
        )
    print(
        f"targets: p99 ≤ {TARGET_P99_MS:.0f} ms, idle CPU ≤ {TARGET_IDLE_CPU:.0%}, RSS ≤ "
        f"{TARGET_RSS_MB:.0f} MB: {'met' if f['target_met'] else 'NOT met'}"
    )
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    args = parser.parse_args()
    if args.seconds < 5:
        parser.error("--seconds must be at least 5")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    figures = run_in_tempdir(lambda tmp: measure(tmp, args.seconds), "the broker and the display")
    report(figures)


if __name__ == "__main__":
    main()
