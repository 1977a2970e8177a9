"""Benchmark: the citizen portal's queue page and a my-ticket page under load, 50 live pages open.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/portal.py [--seconds 20] [--clients 100] [--live 50]

The hub's side runs in this process exactly as ``poradovnik hub`` runs it: the
service layer on a temporary SQLite database with the demo office (40 tickets
waiting, two counters calling), and the web server (uvicorn with its thread
pool for pages and its event loop for the live pages' streams) on a free port
of 127.0.0.1. While it runs, the queue changes twice a second (a ticket issued,
a ticket called), so the pages' caches are invalidated and the open live pages
receive events, as in a busy office.

The load comes from a separate process (this file with ``--client``), a small
asyncio HTTP/1.1 client: ``--clients`` keep-alive connections, half asking for
the queue page (``/``) and half for one waiting ticket's page (``/t/<id>``), and
``--live`` event streams (``/live/queue``) held open throughout, counting their
events. Three phases, on the same server:

1. **floor**: the same clients ask for ``/healthz`` (a trivial response through
   the same stack: uvicorn, the WSGI adapter, Flask) as fast as they can;
2. **pages, closed loop**: each client asks again as soon as it is answered, for
   ``--seconds``: the requests per second the server sustains, and the latency
   that many waiting clients see;
3. **pages, open loop**: the clients together send the target rate
   (``--rate``, 800 req/s) for ``--seconds``, each request at its scheduled time;
   latency counts from the scheduled time (no coordinated omission), so p99 is
   what a citizen sees at that load.

It prints requests per second, p50 and p99 of each phase, the ratio to the floor,
whether the targets are met (≥ 800 req/s; p99 ≤ 100 ms at 800 req/s, with the
live pages open), and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    BenchError,
    HttpConnection,
    busy_hub,
    load_bench_main,
    percentiles,
    run_load_process,
)

TARGET_RPS = 800.0
TARGET_P99_MS = 100.0
FLOOR_SECONDS = 10.0
WAIT_S = 30.0
"""How long connecting may take before the run fails."""


# -- the load generator (a separate process) -----------------------------------------


@dataclass
class Phase:
    """What one phase measured."""

    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Requests per second, p50 and p99 (ms), error count."""
        p50, p99 = percentiles(self.latencies_ms) if len(self.latencies_ms) > 1 else (0, 0)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(p50, 2),
            "p99_ms": round(p99, 2),
        }


async def closed_loop(
    connections: list[HttpConnection], paths: list[str], seconds: float, phase: Phase
) -> None:
    """Every connection asks again as soon as it is answered, for ``seconds``."""
    end = time.perf_counter() + seconds

    async def client(conn: HttpConnection, path: str) -> None:
        while (start := time.perf_counter()) < end:
            status = await conn.get(path)
            phase.latencies_ms.append((time.perf_counter() - start) * 1000)
            phase.requests += 1
            phase.errors += status != 200

    began = time.perf_counter()
    await asyncio.gather(*(client(c, p) for c, p in zip(connections, paths, strict=True)))
    phase.seconds = time.perf_counter() - began


async def open_loop(
    connections: list[HttpConnection], paths: list[str], seconds: float, rate: float, phase: Phase
) -> None:
    """Together ``rate`` requests a second, each at its time; latency from that time."""
    interval = len(connections) / rate
    began = time.perf_counter()
    end = began + seconds

    async def client(index: int, conn: HttpConnection, path: str) -> None:
        due = began + index * interval / len(connections)
        while due < end:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            status = await conn.get(path)
            phase.latencies_ms.append((time.perf_counter() - due) * 1000)
            phase.requests += 1
            phase.errors += status != 200
            due += interval

    await asyncio.gather(
        *(client(i, c, p) for i, (c, p) in enumerate(zip(connections, paths, strict=True)))
    )
    phase.seconds = time.perf_counter() - began


async def hold_stream(port: int, events: list[int], stop: asyncio.Event) -> None:
    """Keep one live page's event stream open and count its events."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /live/queue HTTP/1.1\r\nHost: bench\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    if head[9:12] != b"200":
        raise BenchError(f"a live page was refused: {head[:40]!r}")
    index = len(events)
    events.append(0)
    reading = asyncio.ensure_future(reader.read(65536))
    while not stop.is_set():
        waiting = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({reading, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if reading in done:
            chunk = reading.result()
            if not chunk:
                raise BenchError("a live page's stream was closed by the server")
            events[index] += chunk.count(b"event: version")
            reading = asyncio.ensure_future(reader.read(65536))
    reading.cancel()
    writer.close()


async def load(port: int, ticket: str, clients: int, live: int, seconds: float, rate: float) -> Any:
    """Run the three phases with ``live`` streams open; returns the figures."""
    stop = asyncio.Event()
    events: list[int] = []
    streams = [asyncio.ensure_future(hold_stream(port, events, stop)) for _ in range(live)]
    connections = await asyncio.gather(*(HttpConnection.open(port) for _ in range(clients)))
    pages = ["/" if i % 2 == 0 else f"/t/{ticket}" for i in range(clients)]
    for conn, path in zip(connections, pages, strict=True):  # warm up: caches, connections
        await conn.get(path)
    floor, closed, opened = Phase("floor"), Phase("closed"), Phase("open")
    await closed_loop(connections, ["/healthz"] * clients, FLOOR_SECONDS, floor)
    await closed_loop(connections, pages, seconds, closed)
    await open_loop(connections, pages, seconds, rate, opened)
    open_streams = sum(1 for s in streams if not s.done())
    stop.set()
    await asyncio.gather(*streams, return_exceptions=True)
    for conn in connections:
        conn.close()
    return {
        "floor": floor.summary(),
        "closed": closed.summary(),
        "open": opened.summary(),
        "live_open_at_end": open_streams,
        "live_events_min": min(events) if events else 0,
    }


def client_main(args: argparse.Namespace) -> None:
    """``--client``: generate the load and print the figures as JSON."""
    figures = asyncio.run(
        load(args.port, args.ticket, args.clients, args.live, args.seconds, args.rate)
    )
    print(json.dumps(figures))


# -- the hub's side (this process) --------------------------------------------------


def serve_and_measure(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the hub's web side, start the load process, return its figures."""
    with busy_hub(directory) as (queue, port):
        ticket = queue.issue("taxes").ticket.id
        flags = [
            f"--port={port}",
            f"--ticket={ticket}",
            f"--clients={args.clients}",
            f"--live={args.live}",
            f"--seconds={args.seconds}",
            f"--rate={args.rate}",
        ]
        return run_load_process(__file__, flags, FLOOR_SECONDS + 2 * args.seconds + WAIT_S)


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the figures as text, then as one JSON line."""
    floor, closed, opened = figures["floor"], figures["closed"], figures["open"]

    def line(name: str, phase: dict[str, Any], what: str) -> None:
        print(
            f"{name:8} {phase['rps']:8.1f} req/s  p50 {phase['p50_ms']:7.2f} ms  "
            f"p99 {phase['p99_ms']:7.2f} ms  errors {phase['errors']}  {what}"
        )

    line("floor:", floor, f"/healthz, {args.clients} clients, closed loop")
    line("closed:", closed, f"/ and /t/<id>, {args.clients} clients, closed loop")
    line("open:", opened, f"/ and /t/<id>, {args.rate:.0f} req/s offered")
    ratio_rps = closed["rps"] / floor["rps"] if floor["rps"] else 0.0
    print(
        f"live pages: {figures['live_open_at_end']} of {args.live} still open at the end, "
        f"each got at least {figures['live_events_min']} events"
    )
    met = (
        closed["rps"] >= TARGET_RPS
        and opened["p99_ms"] <= TARGET_P99_MS
        and figures["live_open_at_end"] == args.live
        and closed["errors"] == opened["errors"] == 0
    )
    print(
        f"ratio: pages {ratio_rps:.2f}× the floor's req/s; targets ≥ {TARGET_RPS:.0f} req/s "
        f"and p99 ≤ {TARGET_P99_MS:.0f} ms at {args.rate:.0f} req/s: {'met' if met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "bench": "portal",
                "clients": args.clients,
                "live": args.live,
                "seconds": args.seconds,
                "rps": closed["rps"],
                "closed_p50_ms": closed["p50_ms"],
                "closed_p99_ms": closed["p99_ms"],
                "open_rate": args.rate,
                "open_rps": opened["rps"],
                "open_p50_ms": opened["p50_ms"],
                "p99_ms": opened["p99_ms"],
                "floor_rps": floor["rps"],
                "floor_p50_ms": floor["p50_ms"],
                "floor_p99_ms": floor["p99_ms"],
                "ratio_rps": round(ratio_rps, 2),
                "live_open_at_end": figures["live_open_at_end"],
                "live_events_min": figures["live_events_min"],
                "errors": closed["errors"] + opened["errors"],
                "target_rps": TARGET_RPS,
                "target_p99_ms": TARGET_P99_MS,
                "target_met": met,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each page phase")
    parser.add_argument("--clients", type=int, default=100, help="keep-alive page clients")
    parser.add_argument("--live", type=int, default=50, help="live pages kept open")
    parser.add_argument("--rate", type=float, default=TARGET_RPS, help="open-loop req/s")
    parser.add_argument("--ticket", help=argparse.SUPPRESS)
    measured = load_bench_main(parser, client_main, serve_and_measure)
    if measured is not None:
        args, figures = measured
        report(figures, args)


if __name__ == "__main__":
    main()
