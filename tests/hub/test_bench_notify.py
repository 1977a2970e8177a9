"""``bench/notify.py`` sends push and e-mail notices to local sinks and reports its figures.

A short run with few tickets keeps the benchmark working as the hub changes. Whether
the target is met is the benchmark's own verdict (exit status 0 or 2); a duplicate or
a lost notice would be this test's failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTIFY = Path(__file__).resolve().parents[2] / "bench" / "notify.py"


@pytest.mark.timeout(180)
def test_a_short_run_loses_and_duplicates_nothing() -> None:
    checkout = str(NOTIFY.parents[1])
    done = subprocess.run(
        [sys.executable, str(NOTIFY), "--tickets", "40", "--seconds", "4", "--presses", "3"],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
        env={**os.environ, "PYTHONPATH": checkout},
        cwd=checkout,
    )
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode in (0, 2), output
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, output
    figures = json.loads(lines[0])
    assert figures["bench"] == "notify"
    assert figures["duplicates"] == 0, output
    assert figures["lost"] == 0, output
    assert figures["delivered"] + figures["dropped"] == 4 * 40, output
    # The presses beside the notices: both phases measured, notices sent during the second.
    assert figures["sync_alone_p99_ms"] > 0, output
    assert figures["sync_notify_p99_ms"] > 0, output
    assert figures["sync_notices"] > 0, output
