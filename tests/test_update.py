"""poradovnik-update: a new version in a venv beside the old one, switched atomically,
and switched back when the device is not healthy. The restart and the health check are
commands given in the environment, so no systemd is needed."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UPDATE = ROOT / "image-build/modules/poradovnik/filesystem/root/usr/local/sbin/poradovnik-update"

pytestmark = pytest.mark.slow


def make_wheel(directory: Path, version: str) -> Path:
    """A minimal poradovnik wheel of ``version`` whose command prints it."""
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"poradovnik-{version}-py3-none-any.whl"
    info = f"poradovnik-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("poradovnik_stub.py", f"def main():\n    print('poradovnik {version}')\n")
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: poradovnik\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(
            f"{info}/entry_points.txt", "[console_scripts]\nporadovnik = poradovnik_stub:main\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def update(
    prefix: Path, wheel: Path, *, healthy: bool, log: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # What the restart saw: the version the venv symlink pointed at.
        "PORADOVNIK_UPDATE_RESTART": f"'{prefix}/venv/bin/poradovnik' >> '{log}'",
        "PORADOVNIK_UPDATE_HEALTH": "true" if healthy else "false",
    }
    return subprocess.run(
        [UPDATE, "--prefix", prefix, "--unit", "poradovnik-kiosk.service", wheel],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """/opt/poradovnik with version 1.0 installed (as the image build does it)."""
    prefix = tmp_path / "opt/poradovnik"
    wheel = make_wheel(tmp_path / "wheels", "1.0")
    result = subprocess.run(
        [UPDATE, "--prefix", prefix, "--install-only", wheel],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert os.readlink(prefix / "venv") == "venv-1.0"
    return prefix


def test_a_healthy_update_switches_and_keeps_the_previous_version(
    installed: Path, tmp_path: Path
) -> None:
    log = tmp_path / "restarts.log"
    result = update(installed, make_wheel(tmp_path / "wheels", "1.1"), healthy=True, log=log)
    assert result.returncode == 0, result.stderr
    assert os.readlink(installed / "venv") == "venv-1.1"
    assert log.read_text() == "poradovnik 1.1\n"
    assert sorted(p.name for p in installed.glob("venv-*")) == ["venv-1.0", "venv-1.1"]
    # Another one: the oldest goes, the previous stays for a rollback.
    result = update(installed, make_wheel(tmp_path / "wheels", "1.2"), healthy=True, log=log)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in installed.glob("venv-*")) == ["venv-1.1", "venv-1.2"]


def test_an_unhealthy_update_rolls_back(installed: Path, tmp_path: Path) -> None:
    log = tmp_path / "restarts.log"
    result = update(installed, make_wheel(tmp_path / "wheels", "2.0"), healthy=False, log=log)
    assert result.returncode == 1
    assert "going back to venv-1.0" in result.stderr
    assert os.readlink(installed / "venv") == "venv-1.0"
    # Restarted on the new version, then on the old one again.
    assert log.read_text() == "poradovnik 2.0\nporadovnik 1.0\n"
    assert sorted(p.name for p in installed.glob("venv-*")) == ["venv-1.0"]
    assert not (installed / "venv.new").exists()


def test_a_wheel_that_does_not_install_changes_nothing(installed: Path, tmp_path: Path) -> None:
    broken = tmp_path / "wheels" / "poradovnik-3.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    log = tmp_path / "restarts.log"
    result = update(installed, broken, healthy=True, log=log)
    assert result.returncode == 1
    assert "nothing changed" in result.stderr
    assert os.readlink(installed / "venv") == "venv-1.0"
    assert not log.exists()
