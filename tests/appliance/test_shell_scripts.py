"""Every shell script of the project passes shellcheck."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    path
    for path in [*ROOT.glob("scripts/*"), *ROOT.glob("image-build/**/*"), *ROOT.glob(".ci/*")]
    if path.is_file()
    and (path.read_bytes()[:2] == b"#!" or b"shellcheck shell=" in path.read_bytes()[:200])
    and b"python" not in path.read_bytes().split(b"\n", 1)[0]
)


def test_there_are_scripts_to_check() -> None:
    names = {path.name for path in SCRIPTS}
    assert {
        "install-poradovnik",
        "poradovnik-firstboot",
        "poradovnik-storage",
        "poradovnik-update",
        "poradovnik-update-office",
    } <= names


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="Debian package 'shellcheck'")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_passes(script: Path) -> None:
    result = subprocess.run(
        ["shellcheck", "--external-sources", script],
        capture_output=True,
        text=True,
        cwd=script.parent,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
