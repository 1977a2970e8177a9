"""The hub and the demo as real processes: start, serve, tell systemd, stop cleanly."""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from office_helpers import OfficeBroker
from process_helpers import Process, poradovnik_args

from hub.broker import free_port
from hub.store import Store, sqlite_url

POLL_S = 30.0  # an upper bound for waiting, never a pause


def zone_near_noon() -> str:
    """A fixed-offset time zone in which it is about noon now.

    An office in it has half a day to its midnight, which ends the day's tickets and
    moves bookings to the next day: a test of a whole day's run does not depend on the
    hour it runs at.
    """
    offset = 12 - datetime.now(UTC).hour  # -11 .. +12 hours east of UTC
    return f"Etc/GMT{-offset:+d}"  # the Etc zones' signs are POSIX's, west positive


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(POLL_S)
    yield sock
    sock.close()


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    messages: list[str] = []
    while not any(wanted in m for m in messages):
        messages.append(sock.recv(4096).decode())
    return messages


def hub_config(path: Path, broker: OfficeBroker, data: Path, web_port: int) -> Path:
    path.write_text(
        f'role = "hub"\n[data]\ndir = "{data}"\n'
        f'[mqtt]\nport = {broker.port}\nusername = "hub"\npassword = "{broker.passwords["hub"]}"\n'
        f"[web]\nport = {web_port}\n"
    )
    return path


def test_hub_notifies_systemd_and_stops_on_sigterm(
    tmp_path: Path,
    notify_socket: socket.socket,
    broker: OfficeBroker,
    processes: Callable[..., Process],
) -> None:
    web_port = free_port()
    config = hub_config(tmp_path / "poradovnik.toml", broker, tmp_path / "data", web_port)
    hub = processes(
        poradovnik_args("--config", str(config), "hub"),
        name="hub",
        env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "4000000"},
        cwd=tmp_path,
    )
    messages = receive_until(notify_socket, "READY=1")
    # The web side serves beside the bridge, in the same process.
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/healthz", timeout=POLL_S) as r:
        assert r.read() == b"ok\n"
    messages += receive_until(notify_socket, "WATCHDOG=1")
    assert hub.stop(signal.SIGTERM, timeout=POLL_S) == 0, hub.describe()
    messages += receive_until(notify_socket, "STOPPING=1")
    output = hub.output()
    assert "Traceback" not in output
    assert "poradovnik db seed --demo" in output  # an empty office says what to do
    # The database was created and migrated on the way up.
    with Store(sqlite_url(tmp_path / "data" / "hub.sqlite3")) as store:
        assert store.count_tickets() == 0


def test_demo_runs_an_office_until_interrupted(
    tmp_path: Path, processes: Callable[..., Process]
) -> None:
    # Headless: the kiosk and the display draw on SDL's dummy driver. A checked-in
    # appointment is due at once (its slot is at most ten minutes away), so the clerks
    # call it at their next press rather than when no walk-in waits. The office is where
    # it is about noon, far from the midnight that would end its day.
    port = free_port()
    env = {
        "DISPLAY": "",
        "WAYLAND_DISPLAY": "",
        "PORADOVNIK_WEB__PORT": str(port),
        "PORADOVNIK_QUEUE__APPOINTMENT_CALL_WINDOW_MIN": "30",
        "PORADOVNIK_SITE__TIMEZONE": zone_near_noon(),
    }
    demo = processes(poradovnik_args("demo"), name="demo", env=env, cwd=tmp_path)
    wanted = {
        "a ticket printed": lambda line: "simulated printer: " in line,
        "a call": lambda line: "lobby: " in line and " → " in line,
        "an LED board showing a number": lambda line: "shows '" in line and "shows ''" not in line,
        "the admin's password": lambda line: "/admin as admin, password " in line,
    }
    for what, test in wanted.items():
        demo.wait_for_line(test, POLL_S * 3, what=what)
    # The first booking (taxes, the first free slot) is checked in by its citizen at the
    # kiosk's scanner and called with the appointment's mark; one booking is a no-show.
    booked = demo.wait_for_line(lambda line: "demo: booked A (taxes)" in line, POLL_S)
    code = re.search(r" code (\d{8}),", booked)
    assert code is not None, booked
    assert "who will not come" in demo.output()
    checked_in = demo.wait_for_line(
        lambda line: f"demo: booking {code[1]} checked in as A" in line,
        POLL_S * 3,
        what="the booking's check-in",
    )
    ticket = re.search(r" checked in as (A\d+) ", checked_in)
    assert ticket is not None, checked_in
    demo.wait_for_line(
        lambda line: f"lobby: {ticket[1]} → " in line and line.rstrip().endswith("■ appointment"),
        POLL_S * 3,
        what="the appointment's call",
    )
    # A remote ticket taken on the portal: its holder's e-mail notices reach the demo's
    # SMTP server (narrated), they check in at the kiosk's scanner; one never comes.
    taken = demo.wait_for_line(
        lambda line: "demo: lucia@example.org took remote ticket B" in line, POLL_S
    )
    remote = re.search(r" remote ticket (B\d+) ", taken)
    assert remote is not None, taken
    demo.wait_for_line(
        lambda line: f"demo: notice to lucia@example.org: {remote[1]}: " in line,
        POLL_S,
        what="the remote ticket's e-mail notice",
    )
    demo.wait_for_line(
        lambda line: f"demo: remote ticket {remote[1]} checked in at the kiosk" in line,
        POLL_S * 3,
        what="the remote ticket's check-in",
    )
    assert "they will not come" in demo.output()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=POLL_S) as page:
        assert "Miestne dane" in page.read().decode()  # the portal lists the services
    assert demo.stop(signal.SIGINT, timeout=POLL_S) == 0, demo.describe()
    output = demo.output()
    assert "Traceback" not in output
    for role in ("kiosk", "counter", "display"):
        assert f"started `poradovnik {role}`" in output
    assert "ended with exit status" not in output  # every device stopped cleanly
    assert (tmp_path / "var" / "demo" / "hub.sqlite3").exists()
