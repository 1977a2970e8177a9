"""``bench/chaos.py`` runs through a tiny office day with its faults and reports every figure.

It measures the product through the broker, the hub's process and database: this
keeps the benchmark working as they change. Whether the targets are met is the
benchmark's own verdict (exit status 0 or 2), not this test's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHAOS = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"

FIGURES = {
    "commands_sent",
    "commands_answered",
    "commands_applied",
    "commands_unanswered",
    "calls_published",
    "calls_shown",
    "calls_lost",
    "tickets_issued",
    "tickets_lost",
    "numbers_issued_twice",
    "p99_outside_ms",
    "p99_during_ms",
    "floor_p99_ms",
    "ratio_p99",
    "targets_met",
}


@pytest.mark.timeout(300)
def test_a_tiny_day_with_every_fault_reports_its_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(CHAOS), "--scale", "0.05", "--keep-logs", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode in (0, 2), output
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, output
    figures = json.loads(lines[0])
    assert figures["bench"] == "chaos"
    assert figures.keys() >= FIGURES, output
    assert figures["faults"] == ["broker", "hub", "broker", "panel"]
    assert figures["commands_sent"] > 0, output
    assert figures["tickets_issued"] > 0, output
    assert figures["targets_met"] == (done.returncode == 0)
    assert ("FAIL:" in done.stdout) == (done.returncode == 2)
    assert (tmp_path / "hub.log").exists()
