"""Running a benchmark of ``bench/`` for its tests: a short run's figures and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchRun:
    """A finished benchmark: its exit status, its JSON line's figures and all it printed."""

    returncode: int
    figures: dict[str, Any]
    output: str


def run_bench(name: str, *args: str, timeout: float = 170) -> BenchRun:
    """Run ``bench/<name>.py args`` from the checkout (it imports this checkout's code).

    Asserts that the benchmark gave its verdict (exit status 0, target met, or 2, not
    met) and printed exactly one JSON line.
    """
    done = subprocess.run(
        [sys.executable, str(CHECKOUT / "bench" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
        cwd=CHECKOUT,
    )
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.returncode in (0, 2), output
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, output
    return BenchRun(done.returncode, json.loads(lines[0]), output)
