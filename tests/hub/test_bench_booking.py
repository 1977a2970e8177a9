"""``bench/booking.py`` books and cancels through a real hub web server and reports its figures.

A short run with few clients keeps the benchmark working as the hub changes. Whether
the target is met is the benchmark's own verdict (exit status 0 or 2); a double
booking, a lost booking or an error would be this test's failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BOOKING = Path(__file__).resolve().parents[2] / "bench" / "booking.py"


@pytest.mark.timeout(180)
def test_a_short_run_books_without_double_booking() -> None:
    checkout = str(BOOKING.parents[1])
    environment = {**os.environ, "PYTHONPATH": checkout}
    done = subprocess.run(
        [sys.executable, str(BOOKING), "--seconds", "1", "--clients", "10", "--rate", "20"],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
        env=environment,
        cwd=checkout,
    )
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode in (0, 2), output
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, output
    figures = json.loads(lines[0])
    assert figures["bench"] == "booking"
    assert figures["bookings_per_s"] > 0, output
    assert figures["floor_rps"] > 0, output
    assert figures["double_bookings"] == 0
    assert figures["lost_or_phantom"] == 0
    assert figures["errors"] == 0, output
    assert figures["target_met"] == (done.returncode == 0)
