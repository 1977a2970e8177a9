"""What every benchmark shares: its error, its statistics, and a run in a temporary directory.

It imports nothing heavy, so a benchmark's child process (the kiosk's, measured for its
memory) can use it too.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

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
