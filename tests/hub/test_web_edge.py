"""The web side facing hostile clients: idle sockets, busy sockets, huge request heads.

Each test replays an attack on a real server: ``poradovnik hub`` under a low open-file
limit for the connection floods, the in-process server for the request heads.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
from edge_helpers import WAIT_S, Stream, get, hub_process, idle_sockets, wait_closed
from office_helpers import OfficeBroker

from common.settings import Settings
from hub.app import serve_web
from hub.service import QueueService
from hub.web.connections import MAX_HEAD_BYTES
from hub.web.i18n import ACCEPT_LANGUAGE_CHARS, negotiate
from hub.web.server import WebError, WebServer

NOFILE = 512
"""The hub's open-file limit in the flood tests (systemd's default is 1024)."""


def quiet_log(lines: list[str]) -> None:
    """The hub said what happened, once per kind, and never ran out of files."""
    assert not [line for line in lines if "Too many open files" in line], lines[-5:]
    assert len(lines) < 40, "\n".join(lines[-40:])


def test_idle_sockets_beyond_the_file_limit_leave_the_pages_served(
    tmp_path: Path, broker: OfficeBroker
) -> None:
    # The head timeout outlasts opening the flood, even when a full listen queue makes
    # the kernel retry connects a second later: the bound is reached, not timed out.
    with hub_process(tmp_path, broker, nofile=NOFILE, web="head_timeout_s = 10.0") as hub:
        with idle_sockets(hub.port, NOFILE + 100) as idle:
            for path in ("/healthz", "/", "/display"):
                assert get(hub.port, path)[0] == 200, path
            assert wait_closed(idle) == []  # none holds a place for long
        assert get(hub.port, "/healthz")[0] == 200
        lines = hub.log_lines()
    quiet_log(lines)
    assert any("the web server is full" in line for line in lines)


def test_live_pages_at_their_limit_and_idle_sockets_leave_the_pages_served(
    tmp_path: Path, broker: OfficeBroker
) -> None:
    web = "head_timeout_s = 1.0\nlive_max_clients = 1000"
    with (
        hub_process(tmp_path, broker, nofile=1536, web=web) as hub,
        ExitStack() as streams,
    ):
        pages = []
        for _ in range(1000):
            page = Stream(hub.port)
            streams.callback(page.close)
            pages.append(page)
        assert {page.status for page in pages} == {200}
        first = {page.version() for page in pages}
        with idle_sockets(hub.port, 600) as idle:
            assert get(hub.port, "/healthz")[0] == 200
            assert get(hub.port, "/display")[0] == 200
            status, body, _ = get(
                hub.port,
                "/api/v1/tickets",
                method="POST",
                body=json.dumps({"service": "taxes"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            assert status == 201, body
            # Every live page is still open and hears of the new ticket.
            after = {page.version() for page in pages}
            assert len(after) == 1
            assert after.pop() > max(first)
            assert wait_closed(idle) == []
        lines = hub.log_lines()
    quiet_log(lines)


def test_past_the_bound_with_every_connection_busy_a_new_one_is_refused_at_once(
    web_settings: Settings, web_queue: QueueService
) -> None:
    settings = web_settings.model_copy(
        update={"web": web_settings.web.model_copy(update={"max_connections": 32})}
    )
    server = serve_web(settings, web_queue, port=0)
    try:
        with ExitStack() as stack:
            held = []
            for _ in range(32):
                busy = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
                stack.callback(busy.close)
                # A request, and behind it a head without its body: once the first is
                # answered, the second is in progress, for as long as the client likes.
                busy.sendall(
                    b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n"
                    b"POST /admin/logout HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9\r\n\r\n"
                )
                assert busy.recv(4096).startswith(b"HTTP/1.1 200 ")
                held.append(busy)
            with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as late:
                assert late.recv(4096).startswith(b"HTTP/1.1 503 ")
            for busy in held:
                busy.sendall(b"csrf=none")
            for busy in held:
                while busy.recv(65536):
                    pass  # until the server closed it: its place is free
        assert server.guard.refused >= 1
        assert get(server.port, "/healthz")[0] == 200  # the places are free again
    finally:
        server.stop()


def test_a_request_head_beyond_the_limit_gets_431(web_server: WebServer) -> None:
    status, body, _ = get(web_server.port, "/healthz", headers={"X-Padding": "x" * MAX_HEAD_BYTES})
    assert status == 431
    assert b"too large" in body
    assert get(web_server.port, "/healthz")[0] == 200


def test_a_16_mb_header_is_refused_without_reading_it_all(web_server: WebServer) -> None:
    with socket.create_connection(("127.0.0.1", web_server.port), timeout=WAIT_S) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: hub\r\nX-Big: ")
        try:
            for _ in range(16 * 16):
                sock.sendall(b"x" * 65536)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed it: also a refusal
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431 ") or answer == b""
    assert get(web_server.port, "/healthz")[0] == 200


def test_a_megabyte_of_accept_language_is_refused(web_server: WebServer) -> None:
    accept = "en;q=0.9, " + "x" * (1024 * 1024)
    status, _, _ = get(web_server.port, "/", headers={"Accept-Language": accept})
    assert status == 431


def test_the_page_cache_keeps_one_answer_per_page_and_language(web_server: WebServer) -> None:
    # 25 distinct large Accept-Language headers, and query strings: one entry.
    for i in range(25):
        accept = f"en;q=0.9, {'x' * 8000}{i}"
        status, body, _ = get(web_server.port, f"/?v={i}", headers={"Accept-Language": accept})
        assert status == 200
        assert b"Local taxes" in body  # the page speaks English
    assert len(web_server.router.cache) == 1
    for _ in range(2):
        status, body, _ = get(web_server.port, "/", headers={"Accept-Language": "sk"})
        assert b"Miestne dane" in body
    # At most one more entry, for Slovak: the variants above added none.
    assert len(web_server.router.cache) <= 2


def test_the_language_is_negotiated_from_the_start_of_accept_language() -> None:
    offered = ("sk", "en")
    assert negotiate(offered, None, "de, en;q=0.5") == "en"
    assert negotiate(offered, "en", "sk") == "en"
    assert negotiate(offered, "zz", "") == "sk"
    padded = "de, " * (ACCEPT_LANGUAGE_CHARS // 4) + "en"
    assert negotiate(offered, None, padded) == "sk"  # "en" is past what is read


def test_a_file_limit_too_low_for_the_connections_is_refused_at_start(
    web_settings: Settings, web_queue: QueueService
) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    settings = web_settings.model_copy(
        update={"web": web_settings.web.model_copy(update={"max_connections": soft})}
    )
    with pytest.raises(WebError, match=r"max_connections = \d+ needs an open-file limit"):
        serve_web(settings, web_queue, port=0)


FULL_FILE_TABLE = """
import errno, os, resource, socket
from hub.web.connections import ConnectionGuard, listen
listener = listen("127.0.0.1", 0, ConnectionGuard(64, head_timeout_s=1.0))
client = socket.create_connection(listener.getsockname())
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(map(int, os.listdir("/proc/self/fd"))) + 1, hard))
try:
    while True:
        os.dup(0)
except OSError:
    pass  # the file table is full
seen = []
for _ in range(3):
    try:
        listener.accept()
        seen.append("accepted")
    except BlockingIOError:
        seen.append("paused")
    except OSError as exc:
        seen.append(errno.errorcode[exc.errno])
print(" ".join(seen))
"""


def test_a_full_file_table_pauses_accepting_instead_of_failing_at_once_again() -> None:
    # asyncio's accept loop calls accept() up to its backlog in a row, and logged each
    # failure: after the first, the listener says there is nothing to accept for now.
    done = subprocess.run(
        [sys.executable, "-c", FULL_FILE_TABLE],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["EMFILE", "paused", "paused"]
