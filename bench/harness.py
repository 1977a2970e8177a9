"""What every benchmark shares: its error, its statistics, a run in a temporary directory
and a busy hub's web side with its load process.

It imports nothing heavy at the top (the hub only inside :func:`busy_hub`), so a
benchmark's child process (the kiosk's, measured for its memory) can use it too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class BenchError(RuntimeError):
    """The run could not be measured (something did not start, answer or arrive)."""


def ms(seconds: float) -> float:
    """Seconds in milliseconds."""
    return seconds * 1000


def percentiles(values: list[float]) -> tuple[float, float]:
    """The p50 and p99 of ``values``."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


def run_in_tempdir(measure: Callable[[Path], T], stopped: str) -> T:
    """Run ``measure`` in a fresh temporary directory and return what it measured.

    On Ctrl+C or a :class:`BenchError` it says so in one line and exits (130 or 1);
    ``stopped`` names what the measurement stops on its way out ("the broker and the
    hub"). The directory goes either way.
    """
    try:
        with tempfile.TemporaryDirectory(prefix="poradovnik-bench-") as tmp:
            return measure(Path(tmp))
    except KeyboardInterrupt:
        print(f"interrupted; {stopped} are stopped", file=sys.stderr)
        sys.exit(130)
    except BenchError as failed:
        print(f"the run failed: {failed}", file=sys.stderr)
        sys.exit(1)


@contextmanager
def busy_hub(directory: Path, **web: Any) -> Iterator[tuple[Any, int]]:
    """A hub's queue and web server in ``directory``, in a busy office; yields both.

    The demo office is seeded, counters 1 and 2 serve, 40 tickets wait, the web server
    listens on a free port of 127.0.0.1 (``web``: further :class:`WebSettings` fields) and
    the queue changes twice a second until the block ends; then all is stopped.
    Yields the queue (a :class:`QueueService`) and the server's port.
    """
    # Here, not at the top: a load process imports none of the hub.
    from common.settings import DataSettings, Settings, WebSettings  # noqa: PLC0415
    from hub.app import open_queue, seed_demo, serve_web  # noqa: PLC0415

    settings = Settings(
        role="hub",
        data=DataSettings(dir=directory),
        web=WebSettings(host="127.0.0.1", secure_cookies=False, **web),
    )
    queue = open_queue(settings)
    seed_demo(queue)
    for counter in ("1", "2"):
        queue.counter_action(counter, "resume")
    for n in range(40):
        queue.issue(("taxes", "waste", "parking", "info")[n % 4])
    server = serve_web(settings, queue, port=0)
    stop = threading.Event()

    def office() -> None:
        """A busy office: the queue changes twice a second."""
        turn = 0
        while not stop.wait(0.5):
            turn += 1
            if turn % 2:
                queue.issue("waste")
            else:
                queue.counter_action("2", "next")

    activity = threading.Thread(target=office, name="bench-office", daemon=True)
    activity.start()
    try:
        yield queue, server.port
    finally:
        stop.set()
        activity.join()
        server.stop()
        queue.store.close()


def run_load_process(script: str, flags: list[str], timeout: float) -> dict[str, Any]:
    """Run ``script --client flags`` in a new Python process; return the JSON it prints.

    Raises :class:`BenchError` when the process fails or runs over ``timeout`` seconds.
    """
    command = [sys.executable, script, "--client", *flags]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as late:
        raise BenchError(f"the load process ran over {timeout:.0f} s") from late
    if done.returncode != 0:
        raise BenchError(f"the load process failed: {done.stderr.strip()[-500:]}")
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def load_bench_main(
    parser: argparse.ArgumentParser,
    client_main: Callable[[argparse.Namespace], None],
    measure: Callable[[Path, argparse.Namespace], dict[str, Any]],
) -> tuple[argparse.Namespace, dict[str, Any]] | None:
    """The ``main`` of a benchmark that loads the hub's web server from a load process.

    Adds the load process's hidden ``--client`` and ``--port`` to ``parser`` and parses
    the command line. In the load process (``--client``) it runs ``client_main`` and
    returns ``None``; in the hub's process it runs ``measure`` in a temporary directory
    (:func:`run_in_tempdir`) and returns the arguments and the figures to report.
    """
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return None
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return args, run_in_tempdir(lambda tmp: measure(tmp, args), "the hub's web server")


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to a server on 127.0.0.1 (a load client's)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        """Connect to ``port`` of 127.0.0.1."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send ``method path`` (``body`` as JSON) and read the whole answer: status, body."""
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAccept-Language: sk\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        length = 0
        for line in answer.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length) if length else b""

    async def get(self, path: str) -> int:
        """Send GET ``path`` and read the whole answer; returns its status."""
        return (await self.request("GET", path))[0]

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()
