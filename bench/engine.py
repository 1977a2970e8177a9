"""Benchmark: issue → call → done cycles per second through the service layer on SQLite.

Run it from the checkout with the project's virtual environment::

    .venv/bin/python bench/engine.py [--cycles 5000]

Each cycle issues a ticket, calls it at a counter and finishes it: three
transitions, each persisted in its own transaction (ticket row and audit row)
before the next begins, exactly as the hub does it. The floor, measured in the
same run on the same disk, is raw ``sqlite3`` doing the equivalent writes (per
transition, one ticket row written and one audit row inserted, one commit) with
the same pragmas and page size. It prints both, their ratio, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hub import demo_office
from hub.app import seed_demo
from hub.service import QueueService
from hub.store import SQLITE_PAGE_SIZE, Store, sqlite_url

TARGET = 2000
"""Full cycles per second the hub must sustain on a 2-core machine."""


def hub_cycles(db: Path, cycles: int) -> float:
    """Cycles per second through QueueService, Engine and Store."""
    store = Store(sqlite_url(db))
    store.upgrade()
    queue = QueueService.open(store, timezone=ZoneInfo("Europe/Bratislava"))
    seed_demo(queue)
    counter = demo_office.COUNTERS[1]  # serves taxes only
    service = counter.services[0]
    queue.counter_action(counter.id, "resume")
    start = time.perf_counter()
    for _ in range(cycles):
        queue.issue(service)
        queue.counter_action(counter.id, "next")
        queue.counter_action(counter.id, "done")
    elapsed = time.perf_counter() - start
    assert store.count_tickets() == cycles
    store.close()
    return cycles / elapsed


def raw_cycles(db: Path, cycles: int) -> float:
    """Cycles per second of the equivalent writes with the sqlite3 module alone."""
    con = sqlite3.connect(db, isolation_level=None)
    con.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "CREATE TABLE tickets (id TEXT PRIMARY KEY, service TEXT, day TEXT, seq INTEGER,"
        " number TEXT, state TEXT, counter TEXT, at TEXT, UNIQUE (service, day, seq))"
    )
    con.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, ticket TEXT, at TEXT, actor TEXT,"
        " action TEXT, from_state TEXT, to_state TEXT)"
    )
    event = (
        "INSERT INTO events (ticket, at, actor, action, from_state, to_state) VALUES (?,?,?,?,?,?)"
    )
    start = time.perf_counter()
    for seq in range(1, cycles + 1):
        ticket = uuid.uuid4().hex
        now = datetime.now(UTC).isoformat()
        con.execute("BEGIN IMMEDIATE")
        con.execute(
            "INSERT INTO tickets VALUES (?,?,?,?,?,?,?,?)",
            (ticket, "taxes", "2026-03-02", seq, f"A{seq % 999:03d}", "waiting", None, now),
        )
        con.execute(event, (ticket, now, "bench", "issue", None, "waiting"))
        con.execute("COMMIT")
        for action, old, new in (("call", "waiting", "called"), ("done", "called", "done")):
            con.execute("BEGIN IMMEDIATE")
            con.execute(
                "UPDATE tickets SET state = ?, counter = ?, at = ? WHERE id = ?",
                (new, "2", now, ticket),
            )
            con.execute(event, (ticket, now, "bench", action, old, new))
            con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return cycles / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5000, help="cycles per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poradovnik-bench-") as tmp:
        hub = hub_cycles(Path(tmp) / "hub.sqlite3", args.cycles)
        floor = raw_cycles(Path(tmp) / "raw.sqlite3", args.cycles)
    ratio = floor / hub
    print(f"hub:   {hub:8.0f} issue→call→done cycles/s (engine + store, SQLite WAL)")
    print(f"floor: {floor:8.0f} cycles/s of equivalent raw sqlite3 writes")
    print(f"ratio: {ratio:8.2f}× the floor; target ≥ {TARGET} cycles/s: ", end="")
    print("met" if hub >= TARGET else "NOT met")
    print(
        json.dumps(
            {
                "bench": "engine",
                "cycles": args.cycles,
                "cycles_per_s": round(hub, 1),
                "floor_cycles_per_s": round(floor, 1),
                "ratio_to_floor": round(ratio, 2),
                "target_cycles_per_s": TARGET,
                "target_met": hub >= TARGET,
            }
        )
    )


if __name__ == "__main__":
    main()
