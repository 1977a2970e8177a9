"""poradovnik-update: a new version in a venv beside the old one, switched atomically,
and switched back when the device is not healthy. The restart and the health check are
commands given in the environment, so no systemd is needed."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from process_helpers import Process

from hub.broker import free_port

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


OFFICE = UPDATE.with_name("poradovnik-update-office")


@pytest.fixture
def device_ssh(tmp_path: Path, processes: Callable[..., Process]) -> Iterator[str]:
    """A real sshd on a free port of 127.0.0.1, letting root in with a key of its own, as
    a device lets its hub in; returns the ssh command (PORADOVNIK_SSH) that reaches it."""
    if shutil.which("sshd", path="/usr/sbin:/usr/bin") is None:
        pytest.skip("Debian package 'openssh-server'")
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host", "hub"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / name], check=True
        )
    shutil.copy(keys / "hub.pub", keys / "authorized_keys")
    port = free_port()
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"StrictModes no\nPidFile {keys / 'sshd.pid'}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
    sshd = processes(["/usr/sbin/sshd", "-D", "-e", "-f", keys / "sshd_config"], name="sshd")
    # "Server listening on 127.0.0.1 port …"
    sshd.wait_for_line(lambda line: "listening" in line, 30, what="that it listens")
    yield (
        f"ssh -p {port} -i {keys / 'hub'} -o BatchMode=yes -o StrictHostKeyChecking=no"
        " -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 -l root"
    )
    sshd.stop()


def update_office(
    ssh: str, prefix: Path, wheelhouse: Path, *hosts: str, healthy: bool
) -> subprocess.CompletedProcess[str]:
    """poradovnik-update-office on ``hosts``, each updating ``prefix`` on this machine."""
    remote = (
        f"env PORADOVNIK_UPDATE_RESTART=true PORADOVNIK_UPDATE_HEALTH={str(healthy).lower()} "
        f"{UPDATE} --prefix {prefix} --unit poradovnik-kiosk.service"
    )
    env = {
        **os.environ,
        "PORADOVNIK_SSH": ssh,
        "PORADOVNIK_UPDATE_REMOTE": remote,
        "PORADOVNIK_CONFIG": str(prefix / "no-settings-here.toml"),  # not a hub
    }
    return subprocess.run(
        [OFFICE, wheelhouse, *hosts],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_the_office_update_updates_each_device_it_reaches_and_names_the_others(
    installed: Path, tmp_path: Path, device_ssh: str
) -> None:
    wheelhouse = make_wheel(tmp_path / "wheelhouse", "2.0").parent
    # 127.0.0.2 answers nothing: a device that is switched off.
    result = update_office(
        device_ssh, installed, wheelhouse, "127.0.0.2", "127.0.0.1", healthy=True
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "127.0.0.2: NOT updated (it runs its previous version, or it was not reached)",
        "127.0.0.1: updated",
    ]
    assert os.readlink(installed / "venv") == "venv-2.0"
    assert "Traceback" not in result.stderr


def test_the_office_update_reports_a_device_that_rolled_back(
    installed: Path, tmp_path: Path, device_ssh: str
) -> None:
    wheelhouse = make_wheel(tmp_path / "wheelhouse", "2.0").parent
    result = update_office(device_ssh, installed, wheelhouse, "127.0.0.1", healthy=False)
    assert result.returncode == 1
    assert result.stdout.startswith("127.0.0.1: NOT updated")
    assert "127.0.0.1: poradovnik-update: 2.0 is not healthy: going back to venv-1.0" in (
        result.stderr
    )
    assert os.readlink(installed / "venv") == "venv-1.0"


def test_the_office_update_refuses_a_directory_without_the_wheel(tmp_path: Path) -> None:
    result = subprocess.run(
        [OFFICE, tmp_path, "127.0.0.1"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "holds no poradovnik-*.whl" in result.stderr
