"""A booking checked in for real: booked through the hub's served API, its QR code scanned
at a kiosk running as its own process (``poradovnik kiosk``: simulated scanner FIFO, a
loopback network printer, SDL's dummy driver), its ticket printed with the appointment's
mark, then called at a counter with the mark on the lobby's ``Call``, and refused a
second time. Everything between runs on the real broker and the hub's real bridge."""

from __future__ import annotations

import json
import queue
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kiosk_helpers import CUT, REPLIES, WAIT_S, kiosk_config, scan, scanner_ready
from office_helpers import OfficeBroker, RunningHub, hub_settings
from process_helpers import Process, poradovnik_args

from hub.app import serve_web
from hub.appointments import AppointmentBook, BookingRules
from hub.web.server import WebServer
from kiosk.catalog import Catalog
from kiosk.escpos_text import decode
from kiosk.loopback import LoopbackPrinter
from kiosk.printer import STATUS_QUERY
from lobby.content import APPOINTMENT_MARK
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

PROCESS_S = 60.0  # an upper bound for a process to start, never a pause


@pytest.fixture
def web(hub: RunningHub, broker: OfficeBroker, tmp_path: Path) -> Iterator[WebServer]:
    """The hub's web side served on a free port; ``taxes`` takes appointments."""
    book = AppointmentBook(hub.queue, per_address=5, per_email=5)
    book.save_rules(BookingRules("taxes", enabled=True, slot_min=15, seats=2))
    server = serve_web(hub_settings(broker, tmp_path / "hub"), hub.queue, bridge=hub.bridge, port=0)
    yield server
    server.stop()


@pytest.fixture
def loopback() -> Iterator[LoopbackPrinter]:
    with LoopbackPrinter(REPLIES["ok"]) as printer:
        yield printer


def api(server: WebServer, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/api/v1{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=WAIT_S) as answer:
        return json.loads(answer.read())


def first_slot(server: WebServer, hub: RunningHub) -> str:
    """The first free slot: today's (or tomorrow's, just before midnight); its check-in is
    open at once (it starts within 15 minutes)."""
    today = hub.queue.today()
    for day in (today, today + timedelta(days=1)):
        slots = api(server, f"/services/taxes/slots?date={day.isoformat()}")["slots"]
        free = [slot["starts_at"] for slot in slots if slot["free"] > 0]
        if free:
            return str(free[0])
    raise AssertionError("no free slot of taxes")


def scan_until_taken(kiosk: Process, fifo: Path, text: str, answer: str) -> str:
    """Scan ``text`` until the kiosk's log says ``answer``; that line.

    A scan made while the kiosk is still busy with the last citizen (its screen not yet
    showing the outcome) is ignored, and logged: the citizen scans again, for up to
    :data:`WAIT_S`.
    """
    ignored = "ignored a scan: busy"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        before = kiosk.output().count(ignored)
        seen = 0

        def taken(line: str, before: int = before) -> bool:
            nonlocal seen
            seen += ignored in line
            return answer in line or seen > before

        scan(fifo, text)
        line = kiosk.wait_for_line(taken, WAIT_S, what=f"{answer!r} or the scan ignored")
        if answer in line:
            return line
    raise AssertionError(f"the kiosk ignored every scan for {WAIT_S:g} s: {kiosk.describe()}")


def test_a_booking_is_checked_in_at_a_real_kiosk_called_and_refused_twice(
    hub: RunningHub,
    broker: OfficeBroker,
    web: WebServer,
    loopback: LoopbackPrinter,
    device: Callable[..., DeviceLink],
    processes: Callable[..., Process],
    tmp_path: Path,
) -> None:
    starts_at = first_slot(web, hub)
    booked = api(
        web, "/appointments", {"service": "taxes", "starts_at": starts_at, "name": "Jana N."}
    )
    code = booked["code"]
    assert p.parse_checkin_qr(booked["qr"]) == code

    ready = scanner_ready(hub.bridge, "k1")
    calls: queue.Queue[p.Call] = queue.Queue()
    lobby = device("display-d1")
    lobby.subscribe(lobby.topics.calls(), lambda _t, payload: calls.put(p.decode(p.Call, payload)))

    fifo = tmp_path / "scanner"
    config = kiosk_config(tmp_path / "kiosk.toml", broker, loopback, fifo)
    kiosk = processes(
        poradovnik_args("--config", str(config), "kiosk"),
        name="kiosk",
        env={"SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"},
        cwd=tmp_path,
    )
    assert ready.wait(PROCESS_S), f"the hub did not hear of the kiosk's scanner: {kiosk.describe()}"

    scan(fifo, booked["qr"])
    assert loopback.wait_for(CUT, WAIT_S), f"no ticket was printed: {kiosk.describe()}"
    # After the cut the kiosk asks the printer how it is, then shows the outcome.
    cut = loopback.data.index(CUT) + len(CUT)
    assert loopback.wait_for(STATUS_QUERY, WAIT_S, start=cut), "no status asked after the ticket"
    printed = decode(loopback.take(), "TM-T20II").texts
    slot = f"{datetime.fromisoformat(starts_at).astimezone(hub.queue.timezone):%H:%M}"
    assert f"{APPOINTMENT_MARK} {Catalog.load('sk').text('ticket.appointment', time=slot)}" in (
        printed
    ), printed
    (number,) = (
        text.split()[0] for text in printed if re.fullmatch(rf"A\d{{3}} {APPOINTMENT_MARK}", text)
    )

    # Counter 2 serves taxes only: its next call is the appointment, marked on the lobby.
    called = hub.queue.counter_action("2", "next").subject
    assert called is not None
    assert called.number == number
    assert called.appointment == booked_id(hub, code)
    call = calls.get(timeout=WAIT_S)
    assert (call.ticket, call.counter, call.appointment) == (number, "2", True)

    # The same booking scanned again: refused (checked in already), nothing printed.
    refused = scan_until_taken(kiosk, fifo, booked["qr"], f"booking {code} not checked in: ")
    assert refused.rstrip().endswith(
        f"not checked in: checked_in (booking {code} is already checked in)"
    ), refused
    assert CUT not in loopback.take()  # status queries only: no ticket
    assert kiosk.stop(timeout=WAIT_S) == 0, kiosk.describe()
    assert "Traceback" not in kiosk.output()


def booked_id(hub: RunningHub, code: str) -> str:
    found = hub.queue.store.appointment_by_code(code)
    assert found is not None
    return found.id
