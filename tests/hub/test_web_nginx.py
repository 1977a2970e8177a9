"""The portal's nginx front: its configuration passes ``nginx -t``, and a real nginx in
front of a real hub serves the pages over TLS and stops the attacks on the web side."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from edge_helpers import (
    WAIT_S,
    HubProcess,
    Stream,
    connect,
    free_port,
    get,
    hub_process,
    idle_sockets,
    unverified,
    wait_closed,
)
from office_helpers import office_broker

from common.settings import WebSettings
from hub.nginx import STATIC_DIR, Front, render_config

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None
)
OPENSSL = shutil.which("openssl")

pytestmark = pytest.mark.skipif(
    NGINX is None or OPENSSL is None, reason="nginx or openssl is missing (Debian packages)"
)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made as the hub's first boot makes them."""
    directory = tmp_path_factory.mktemp("tls")
    crt, key = directory / "portal.crt", directory / "portal.key"
    made = subprocess.run(
        [str(OPENSSL), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "3650", "-subj", "/CN=poradovnik-hub",
         "-addext", "subjectAltName=DNS:poradovnik-hub,DNS:poradovnik-hub.local",
         "-keyout", str(key), "-out", str(crt)],
        capture_output=True, text=True, check=False, timeout=WAIT_S,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return crt, key


def test_the_appliance_configuration_passes_nginx_t(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    settings = tmp_path / "hub.toml"
    settings.write_text(
        f'role = "hub"\n[data]\ndir = "{tmp_path}"\n'
        '[web]\nproxy_hops = 1\nallowed_hosts = ["poradovnik.example"]\n'
    )
    conf = tmp_path / "nginx.conf"
    crt, key = certificate
    written = subprocess.run(
        [sys.executable, "-m", "poradovnik.cli", "--config", str(settings), "nginx", "config",
         "--to", str(conf), "--certificate", str(crt), "--key", str(key)],
        capture_output=True, text=True, check=False, timeout=WAIT_S,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr
    text = conf.read_text()
    assert "server 127.0.0.1:8080;" in text
    assert f"alias {STATIC_DIR}/;" in text
    checked = subprocess.run(
        [str(NGINX), "-t", "-c", str(conf), "-e", str(tmp_path / "error.log"),
         "-g", f"pid {tmp_path / 'nginx.pid'};"],
        capture_output=True, text=True, check=False, timeout=WAIT_S,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


@dataclass
class RunningFront:
    """nginx on ``https`` and ``http`` in front of ``hub``; its error log in ``log``."""

    hub: HubProcess
    https: int
    http: int
    log: Path


@pytest.fixture(scope="module")
def front(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[RunningFront]:
    """The demo office's hub (one proxy hop) behind a real nginx on free ports, for the
    module's tests (each leaves it as it found it)."""
    state = tmp_path_factory.mktemp("nginx")
    crt, key = certificate
    hub_dir = tmp_path_factory.mktemp("hub")
    with (
        office_broker(tmp_path_factory.mktemp("broker")) as broker,
        hub_process(
            hub_dir,
            broker,
            nofile=1024,
            web='proxy_hops = 1\nallowed_hosts = ["poradovnik.example"]',
        ) as hub,
    ):
        layout = Front(
            certificate=crt,
            key=key,
            https_port=free_port(),
            http_port=free_port(),
            bind="127.0.0.1",
            state_dir=state,
            user="root" if os.geteuid() == 0 else None,
            client_timeout_s=2,
        )
        conf = state / "nginx.conf"
        conf.write_text(
            render_config(
                WebSettings(port=hub.port, proxy_hops=1, allowed_hosts=("poradovnik.example",)),
                layout,
            )
        )
        log = state / "error.log"
        nginx = subprocess.Popen(
            [str(NGINX), "-c", str(conf), "-p", str(state), "-e", str(log), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            running = RunningFront(hub, layout.https_port, layout.http_port, log)
            _wait_listening(nginx, running)
            yield running
        finally:
            nginx.terminate()
            nginx.wait(WAIT_S)


def _wait_listening(nginx: subprocess.Popen[bytes], front: RunningFront) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", front.https), timeout=WAIT_S).close()
            return
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, f"nginx does not listen: {front.log.read_text()}"
        try:  # waits on nginx's exit: that would be the failure to report
            nginx.wait(0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"nginx ended: {front.log.read_text()}")


def test_pages_static_files_and_live_pages_are_served_over_tls(front: RunningFront) -> None:
    status, body, _ = get(front.https, "/", tls=True)
    assert status == 200
    assert "Miestne dane" in body.decode()
    status, body, headers = get(front.https, "/static/live.js", tls=True)
    assert status == 200
    assert body == (STATIC_DIR / "live.js").read_bytes()
    assert "expires" in headers  # nginx's own answer, not the hub's
    assert "strict-transport-security" in get(front.https, "/healthz", tls=True)[2]
    page = Stream(front.https, tls=True)
    try:
        assert page.status == 200
        first = page.version()
        status, body, _ = get(
            front.https,
            "/api/v1/tickets",
            tls=True,
            method="POST",
            body=json.dumps({"service": "taxes"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 201, body
        assert page.version() > first  # the stream is passed on unbuffered
    finally:
        page.close()


def test_plain_http_serves_the_lobby_display_and_redirects_the_rest(front: RunningFront) -> None:
    assert get(front.http, "/display")[0] == 200
    status, _, headers = get(front.http, "/admin/login", headers={"Host": "hub.example"})
    assert status == 301
    assert headers["location"] == "https://hub.example/admin/login"


def test_idle_sockets_and_oversized_heads_are_stopped_in_front(front: RunningFront) -> None:
    with idle_sockets(front.https, 600) as idle:
        assert get(front.https, "/healthz", tls=True)[0] == 200
        assert wait_closed(idle) == []  # client_header_timeout
    big = {"X-Big": "x" * (64 * 1024)}
    assert get(front.https, "/", tls=True, headers=big)[0] == 400
    many = {f"X-Part-{i}": "x" * 3000 for i in range(8)}
    assert get(front.https, "/", tls=True, headers=many)[0] == 400
    huge_language = {"Accept-Language": "en;q=0.9, " + "x" * (1024 * 1024)}
    assert get(front.https, "/", tls=True, headers=huge_language)[0] == 400
    with unverified().wrap_socket(
        socket.create_connection(("127.0.0.1", front.https), timeout=WAIT_S)
    ) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: hub\r\nX-Big: ")
        try:
            for _ in range(16 * 16):  # the 16 MB header
                sock.sendall(b"x" * 65536)
        except OSError:
            pass  # nginx closed it: a refusal too
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ") or answer == b""
    assert get(front.https, "/healthz", tls=True)[0] == 200
    lines = front.hub.log_lines()
    assert not [line for line in lines if "Too many open files" in line]


def test_one_address_gets_limited_connections_and_requests(front: RunningFront) -> None:
    address = "127.0.0.2"  # a client of its own: the others' budgets stay untouched
    with ExitStack() as stack:
        pages = []
        for _ in range(Front.connections_per_address):
            page = Stream(front.https, tls=True, source=address)
            stack.callback(page.close)
            pages.append(page)
        assert {page.status for page in pages} == {200}
        refused = Stream(front.https, tls=True, source=address)
        stack.callback(refused.close)
        assert refused.status == 429
        other = Stream(front.https, tls=True)  # another address is served
        stack.callback(other.close)
        assert other.status == 200
    connection = connect(front.https, tls=True, source=address)
    statuses = []
    try:
        for _ in range(10 * Front.requests_per_second):
            connection.request("GET", "/static/live.js")
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)
    finally:
        connection.close()
    assert set(statuses) == {200, 429}
