"""A short run of ``bench/city_load.py``: it measures, checks every row and prints one JSON line."""

from __future__ import annotations

import pytest
from bench_helpers import run_bench

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]


def test_a_short_run_of_the_city_benchmark_stores_every_row_once(city_url: str) -> None:
    run = run_bench(
        "city_load",
        # The measured clerks' few presses at short pauses fit in the window (their
        # processes start in it); three branches keep the load they make light.
        *("--branches", "3", "--real", "1", "--seconds", "30", "--think-ms", "1500"),
        *("--presses", "3", "--press-think-ms", "300"),
        *("--live", "20", "--portal-seconds", "3", "--database-url", city_url),
        timeout=280,
    )
    figures = run.figures
    assert figures["bench"] == "city", run.output
    assert figures["branches"] == 3
    assert figures["rows_compared"] > 0, run.output
    assert figures["rows_differing"] == 0, run.output
    assert figures["events_per_s"] > 0, run.output
    assert figures["live_pages"] == 20
    assert figures["live_rps"] > 0, run.output
    assert figures["live_failures"] == 0, run.output
    assert figures["portal_rps"] > 0, run.output
    assert figures["portal_failures"] == 0, run.output
    assert figures["bytes_per_row"] > 0, run.output
    assert figures["floor_p99_ms"] > 0, run.output
    assert figures["branch_p99_ms"] > 0, run.output
    assert figures["branch_presses"] == figures["floor_presses"] == 20 * 3, run.output
    # The measured office at a normal priority and the rest at the lowest, or (without
    # the privilege) neither reprioritised.
    assert (figures["office_nice"], figures["rest_nice"]) in ((0, 19), (None, None)), run.output
