"""``bench/booking.py`` books and cancels through a real hub web server and reports its figures.

A short run with few clients keeps the benchmark working as the hub changes. Whether
the target is met is the benchmark's own verdict (exit status 0 or 2); a double
booking, a lost booking or an error would be this test's failure.
"""

from __future__ import annotations

import pytest
from bench_helpers import run_bench

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_a_short_run_books_without_double_booking() -> None:
    run = run_bench("booking", "--seconds", "1", "--clients", "10", "--rate", "20")
    figures, output = run.figures, run.output
    assert figures["bench"] == "booking"
    assert figures["bookings_per_s"] > 0, output
    assert figures["floor_rps"] > 0, output
    assert figures["double_bookings"] == 0
    assert figures["lost_or_phantom"] == 0
    assert figures["errors"] == 0, output
    assert figures["target_met"] == (run.returncode == 0)
