"""``bench/notify.py`` sends push and e-mail notices to local sinks and reports its figures.

A short run with few tickets keeps the benchmark working as the hub changes. Whether
the target is met is the benchmark's own verdict (exit status 0 or 2); a duplicate or
a lost notice would be this test's failure.
"""

from __future__ import annotations

import pytest
from bench_helpers import run_bench

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
def test_a_short_run_loses_and_duplicates_nothing() -> None:
    run = run_bench("notify", "--tickets", "40", "--seconds", "4", "--presses", "1")
    figures, output = run.figures, run.output
    assert figures["bench"] == "notify"
    assert figures["duplicates"] == 0, output
    assert figures["lost"] == 0, output
    assert figures["delivered"] + figures["dropped"] == 4 * 40, output
    # The presses beside the notices: both phases measured, notices sent during the second.
    assert figures["sync_alone_p99_ms"] > 0, output
    assert figures["sync_notify_p99_ms"] > 0, output
    assert figures["sync_notices"] > 0, output
