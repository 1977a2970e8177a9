"""Benchmark: 200 clients booking and cancelling the slots of one busy day through the REST API.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/booking.py [--seconds 15] [--clients 200] [--rate 100]

The hub's side runs in this process as ``poradovnik hub`` runs it: the service layer
on a temporary SQLite database with the demo office, and the web server (uvicorn and
its thread pool) on a free port of 127.0.0.1. ``taxes`` takes appointments tomorrow,
all day, in 5-minute slots with 3 seats (864 seats). While it runs the queue changes
twice a second (a ticket issued, a ticket called), as in a busy office. Rate and
booking limits are lifted: every client comes from 127.0.0.1.

The load comes from a separate process (this file with ``--client``): ``--clients``
keep-alive connections, each of which books a random slot of the day
(``POST /api/v1/appointments``) and cancels one of its bookings
(``DELETE /api/v1/appointments/<code>``) four times in five, so the day fills slowly
and later bookings contend for the last seats (409 ``slot_full``). Three phases:

1. **floor**: the same clients ask for ``/healthz`` (a trivial response through the
   same stack) as fast as they can;
2. **closed loop**: each client books or cancels again as soon as it is answered, for
   ``--seconds``: the bookings per second the hub sustains;
3. **open loop**: the clients together send ``--rate`` operations a second, each at its
   scheduled time, latency counted from that time: the p99 a citizen sees.

Then the database is checked: no seat held twice, no slot over its seats, and exactly
the bookings the clients kept (booked and not cancelled) are active. It prints
bookings per second, p50 and p99, the double bookings (must be 0), the floor and the
ratio, whether the target is met (p99 ≤ 100 ms at ``--rate``, no double booking),
and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness import BenchError, HttpConnection, busy_hub, load_bench_main, run_load_process
from portal import Phase, closed_loop

TARGET_P99_MS = 100.0
FLOOR_SECONDS = 5.0
WAIT_S = 60.0
"""How long setting up and checking may take beyond the phases before the run fails."""
SLOT_MIN = 5
SEATS = 3
CANCEL_SHARE = 0.8
"""Of the operations after a booking, the share that cancels one of the client's."""


# -- the load generator (a separate process) -----------------------------------------


@dataclass
class Ledger:
    """What the clients did, for the phases' figures and the final check."""

    kept: set[str] = field(default_factory=set)
    """Codes booked and not cancelled."""
    full: int = 0
    """Bookings refused with 409 slot_full."""


class Booker:
    """One client: books random slots and cancels some of its bookings."""

    def __init__(self, conn: HttpConnection, slots: list[str], ledger: Ledger, seed: int) -> None:
        self.conn = conn
        self.slots = slots
        self.ledger = ledger
        self.rng = random.Random(seed)
        self.mine: list[str] = []

    async def step(self, books: Phase, cancels: Phase, started: float) -> None:
        """One operation; its latency counts from ``started``."""
        if self.mine and self.rng.random() < CANCEL_SHARE:
            code = self.mine.pop(self.rng.randrange(len(self.mine)))
            status, _ = await self.conn.request("DELETE", f"/api/v1/appointments/{code}")
            cancels.latencies_ms.append((time.perf_counter() - started) * 1000)
            cancels.requests += 1
            cancels.errors += status != 200
            if status == 200:
                self.ledger.kept.discard(code)
            return
        body = {"service": "taxes", "starts_at": self.rng.choice(self.slots), "name": "Bench"}
        status, answer = await self.conn.request(
            "POST", "/api/v1/appointments", json.dumps(body).encode()
        )
        books.latencies_ms.append((time.perf_counter() - started) * 1000)
        books.requests += 1
        if status == 201:
            code = json.loads(answer)["code"]
            self.mine.append(code)
            self.ledger.kept.add(code)
        elif status == 409 and b"slot_full" in answer:
            self.ledger.full += 1
        else:
            books.errors += 1


async def run_closed(bookers: list[Booker], seconds: float, books: Phase, cancels: Phase) -> None:
    """Each client books or cancels again as soon as it is answered."""
    end = time.perf_counter() + seconds

    async def client(booker: Booker) -> None:
        while (start := time.perf_counter()) < end:
            await booker.step(books, cancels, start)

    began = time.perf_counter()
    await asyncio.gather(*(client(b) for b in bookers))
    books.seconds = cancels.seconds = time.perf_counter() - began


async def run_open(
    bookers: list[Booker], seconds: float, rate: float, books: Phase, cancels: Phase
) -> None:
    """Together ``rate`` operations a second, each at its time; latency from that time."""
    interval = len(bookers) / rate
    began = time.perf_counter()
    end = began + seconds

    async def client(index: int, booker: Booker) -> None:
        due = began + index * interval / len(bookers)
        while due < end:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await booker.step(books, cancels, due)
            due += interval

    await asyncio.gather(*(client(i, b) for i, b in enumerate(bookers)))
    books.seconds = cancels.seconds = time.perf_counter() - began


async def load(port: int, day: str, clients: int, seconds: float, rate: float) -> Any:
    """Run the three phases; returns the figures and the codes the clients kept."""
    connections = await asyncio.gather(*(HttpConnection.open(port) for _ in range(clients)))
    status, answer = await connections[0].request("GET", f"/api/v1/services/taxes/slots?date={day}")
    if status != 200:
        raise BenchError(f"the slots were refused: {status} {answer[:200]!r}")
    slots = [slot["starts_at"] for slot in json.loads(answer)["slots"]]
    ledger = Ledger()
    bookers = [Booker(conn, slots, ledger, seed) for seed, conn in enumerate(connections)]
    floor = Phase("floor")
    await closed_loop(connections, ["/healthz"] * clients, FLOOR_SECONDS, floor)
    closed = Phase("book"), Phase("cancel")
    await run_closed(bookers, seconds, *closed)
    opened = Phase("book"), Phase("cancel")
    await run_open(bookers, seconds, rate, *opened)
    for conn in connections:
        conn.close()
    return {
        "slots": len(slots),
        "floor": floor.summary(),
        "closed_book": closed[0].summary(),
        "closed_cancel": closed[1].summary(),
        "open_book": opened[0].summary(),
        "open_cancel": opened[1].summary(),
        "full": ledger.full,
        "kept": sorted(ledger.kept),
    }


def client_main(args: argparse.Namespace) -> None:
    """``--client``: generate the load and print the figures as JSON."""
    figures = asyncio.run(load(args.port, args.day, args.clients, args.seconds, args.rate))
    print(json.dumps(figures))


# -- the hub's side (this process) --------------------------------------------------


def serve_and_measure(directory: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the hub's web side, start the load process, check the database."""
    # Here, not at the top: the load process imports none of the hub.
    from hub.appointments import AppointmentBook, BookingRules  # noqa: PLC0415

    unlimited = "100000/second"
    with busy_hub(
        directory,
        booking_limit=unlimited,
        booking_code_limit=unlimited,
        bookings_per_address=1000,
    ) as (queue, port):
        book = AppointmentBook(queue, per_address=1000, per_email=2)  # for the rules and checks
        book.save_rules(
            BookingRules("taxes", enabled=True, slot_min=SLOT_MIN, seats=SEATS, horizon_days=7)
        )
        # The day after tomorrow: its first slots (from midnight) can be cancelled at any
        # hour of the run (tomorrow's, in the last hour before midnight, could not).
        day = queue.today() + timedelta(days=2)
        flags = [
            f"--port={port}",
            f"--day={day.isoformat()}",
            f"--clients={args.clients}",
            f"--seconds={args.seconds}",
            f"--rate={args.rate}",
        ]
        figures = run_load_process(__file__, flags, FLOOR_SECONDS + 2 * args.seconds + WAIT_S)
        figures |= check(book, day, set(figures.pop("kept")))
    return figures


def check(book: Any, day: Any, kept: set[str]) -> dict[str, int]:
    """Double bookings and lost or phantom bookings in the database after the run."""
    rows = book.day_bookings("taxes", day)
    active = {a.code for a in rows}
    per_slot: dict[Any, int] = {}
    for appointment in rows:
        per_slot[appointment.starts_at] = per_slot.get(appointment.starts_at, 0) + 1
    return {
        "active": len(active),
        "over_seats": sum(1 for n in per_slot.values() if n > SEATS),
        "double_seats": _seats_taken(book),
        "lost_or_phantom": len(active ^ kept),
    }


def _seats_taken(book: Any) -> int:
    """Seats that two active rows share (the unique index makes this 0)."""
    from sqlalchemy import func, select  # noqa: PLC0415

    from hub.store import metadata  # noqa: PLC0415

    table = metadata.tables["appointments"]
    query = (
        select(table.c.starts_at, table.c.seat, func.count())
        .where(table.c.state.in_(("held", "booked")))
        .group_by(table.c.starts_at, table.c.seat)
        .having(func.count() > 1)
    )
    with book.store.db.connect() as conn:
        return len(conn.execute(query).all())


def report(figures: dict[str, Any], args: argparse.Namespace) -> bool:
    """Print the figures as text, then as one JSON line; whether the target is met."""
    floor = figures["floor"]

    def line(name: str, phase: dict[str, Any], what: str) -> None:
        print(
            f"{name:14} {phase['rps']:8.1f} /s  p50 {phase['p50_ms']:7.2f} ms  "
            f"p99 {phase['p99_ms']:7.2f} ms  errors {phase['errors']}  {what}"
        )

    line("floor:", floor, f"GET /healthz, {args.clients} clients, closed loop")
    line("closed book:", figures["closed_book"], f"POST, {args.clients} clients, closed loop")
    line("closed cancel:", figures["closed_cancel"], "DELETE, closed loop")
    line("open book:", figures["open_book"], f"POST, {args.rate:.0f} operations/s offered")
    line("open cancel:", figures["open_cancel"], "DELETE, open loop")
    ops = figures["closed_book"]["rps"] + figures["closed_cancel"]["rps"]
    ratio = ops / floor["rps"] if floor["rps"] else 0.0
    doubles = figures["over_seats"] + figures["double_seats"]
    print(
        f"day: {figures['slots']} slots × {SEATS} seats; {figures['active']} booked at the end; "
        f"{figures['full']} bookings refused as full; double bookings {doubles}; "
        f"lost or phantom {figures['lost_or_phantom']}"
    )
    errors = sum(figures[k]["errors"] for k in figures if k.startswith(("closed_", "open_")))
    met = (
        figures["open_book"]["p99_ms"] <= TARGET_P99_MS
        and figures["open_cancel"]["p99_ms"] <= TARGET_P99_MS
        and doubles == 0
        and figures["lost_or_phantom"] == 0
        and errors == 0
    )
    print(
        f"ratio: bookings and cancellations {ratio:.2f}× the floor's req/s; target p99 ≤ "
        f"{TARGET_P99_MS:.0f} ms at {args.rate:.0f}/s and no double booking: "
        f"{'met' if met else 'NOT met'}"
    )
    print(
        json.dumps(
            {
                "bench": "booking",
                "clients": args.clients,
                "seconds": args.seconds,
                "bookings_per_s": figures["closed_book"]["rps"],
                "cancels_per_s": figures["closed_cancel"]["rps"],
                "closed_book_p99_ms": figures["closed_book"]["p99_ms"],
                "open_rate": args.rate,
                "open_book_p50_ms": figures["open_book"]["p50_ms"],
                "p99_ms": figures["open_book"]["p99_ms"],
                "open_cancel_p99_ms": figures["open_cancel"]["p99_ms"],
                "floor_rps": floor["rps"],
                "floor_p99_ms": floor["p99_ms"],
                "ratio_rps": round(ratio, 2),
                "slot_full": figures["full"],
                "double_bookings": doubles,
                "lost_or_phantom": figures["lost_or_phantom"],
                "errors": errors,
                "target_p99_ms": TARGET_P99_MS,
                "target_met": met,
            }
        )
    )
    return bool(met)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--clients", type=int, default=200, help="keep-alive clients")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop operations/s")
    parser.add_argument("--day", help=argparse.SUPPRESS)
    measured = load_bench_main(parser, client_main, serve_and_measure)
    if measured is not None:
        args, figures = measured
        sys.exit(0 if report(figures, args) else 2)


if __name__ == "__main__":
    main()
