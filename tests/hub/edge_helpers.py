"""The hub as a real process under a low open-file limit, and raw clients that attack it.

Shared by the tests of the web side's limits (test_web_edge.py) and of the nginx front
(test_web_nginx.py).
"""

from __future__ import annotations

import http.client
import os
import resource
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from office_helpers import OfficeBroker

from hub.broker import free_port

WAIT_S = 30.0  # an upper bound for waiting, never a pause


@dataclass
class HubProcess:
    """``poradovnik hub`` running, its web side on ``port``, its log in ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def _limit_files(count: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


@contextmanager
def hub_process(
    tmp_path: Path, broker: OfficeBroker, *, nofile: int, web: str = ""
) -> Iterator[HubProcess]:
    """The demo office's hub with at most ``nofile`` open files; ``web`` adds [web] keys."""
    port = free_port()
    config = tmp_path / "hub.toml"
    config.write_text(
        f'role = "hub"\n[data]\ndir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nport = {broker.port}\nusername = "hub"\npassword = "{broker.passwords["hub"]}"\n'
        f"[web]\nport = {port}\nsecure_cookies = false\n{web}\n"
    )
    command = [sys.executable, "-m", "poradovnik.cli", "--config", str(config)]
    seeded = subprocess.run(
        [*command, "db", "seed", "--demo"],
        check=False,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert seeded.returncode == 0, seeded.stderr
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(WAIT_S)
    log = tmp_path / "hub.log"
    with notify, log.open("wb") as output:
        process = subprocess.Popen(
            [*command, "hub"],
            env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            preexec_fn=lambda: _limit_files(nofile),  # noqa: PLW1509 (no threads here yet)
        )
        running = HubProcess(process, port, log)
        try:
            while b"READY=1" not in notify.recv(4096):
                pass
            yield running
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(WAIT_S)
            finally:
                process.kill()


def unverified() -> ssl.SSLContext:
    """A TLS client context that takes any certificate (the front's is self-signed)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def connect(
    port: int, *, tls: bool = False, source: str = "127.0.0.1"
) -> http.client.HTTPConnection:
    """A keep-alive HTTP connection to 127.0.0.1 from ``source``, over TLS if asked."""
    address = (source, 0)
    if tls:
        return http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=WAIT_S, context=unverified(), source_address=address
        )
    return http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S, source_address=address)


def get(
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    tls: bool = False,
    method: str = "GET",
    body: bytes | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    """One request on a new connection: status, body and headers (names in lower case)."""
    connection = connect(port, tls=tls)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read(), {k.lower(): v for k, v in answer.getheaders()}
    finally:
        connection.close()


@contextmanager
def idle_sockets(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that send nothing (some may have been refused already)."""
    with ExitStack() as stack:
        opened = []
        for _ in range(count):
            sock = socket.socket()
            stack.callback(sock.close)
            sock.settimeout(WAIT_S)
            sock.connect(("127.0.0.1", port))
            opened.append(sock)
        yield opened


def wait_closed(sockets: list[socket.socket], timeout: float = WAIT_S) -> list[socket.socket]:
    """Wait until the server closed every one of ``sockets``; those still open at the end."""
    still = set(sockets)
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while still and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, TimeoutError):
                    data = b""
                if not data:
                    selector.unregister(sock)
                    still.discard(sock)
    return list(still)


class Stream:
    """A live page's event stream, read from a raw connection."""

    def __init__(
        self, port: int, path: str = "/live/queue", *, tls: bool = False, source: str = "127.0.0.1"
    ) -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=WAIT_S, source_address=(source, 0)
        )
        if tls:
            self.sock = unverified().wrap_socket(self.sock)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: hub\r\n\r\n".encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.headers = head.decode("latin-1").lower()

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            data = self.sock.recv(65536)
            assert data, "the server closed the stream"
            self.buffer += data
        part, _, self.buffer = self.buffer.partition(marker)
        return part

    def version(self) -> int:
        """The version of the next event (heartbeats skipped)."""
        while True:
            for line in self._until(b"\n\n").decode().splitlines():
                if line.startswith("data: "):
                    return int(line.removeprefix("data: "))

    def close(self) -> None:
        self.sock.close()
