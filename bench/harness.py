"""What every benchmark shares: its error, its statistics, and a run in a temporary directory.

It imports nothing heavy, so a benchmark's child process (the kiosk's, measured for its
memory) can use it too.
"""

from __future__ import annotations

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
