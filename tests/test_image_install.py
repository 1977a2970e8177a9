"""The image's install steps, run into a temporary root, then first boot for each role.

By default the steps run into a staging directory (no Debian packages, the host's
Python builds the venv): fast enough for every run. With PORADOVNIK_TEST_DEBOOTSTRAP=1
they run into a Debian bookworm root made with debootstrap (a few minutes; needs root,
debootstrap and deb.debian.org), packages and all, inside it with chroot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "image-build" / "modules" / "poradovnik"
FILESYSTEM = MODULE / "filesystem"
INSTALL = FILESYSTEM / "tools" / "install-poradovnik"
FIRSTBOOT = "usr/local/sbin/poradovnik-firstboot"
DEBOOTSTRAP = os.environ.get("PORADOVNIK_TEST_DEBOOTSTRAP") == "1"
MIRROR = os.environ.get("PORADOVNIK_TEST_MIRROR", "http://deb.debian.org/debian")
ROLES = ("hub", "kiosk", "display", "counter")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("systemd-sysusers") is None or shutil.which("systemctl") is None,
        reason="systemd's tools are missing (Debian package 'systemd')",
    ),
]


def run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout built as a wheel, once per session."""
    directory = tmp_path_factory.mktemp("wheelhouse")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", directory, ROOT)
    return directory


def _debootstrap(target: Path) -> None:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("PORADOVNIK_TEST_DEBOOTSTRAP=1 needs root and debootstrap")
    run("debootstrap", "--variant=minbase", "--include=systemd,python3,python3-venv",
        "bookworm", target, MIRROR)  # fmt: skip


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """A root with the install steps done: all roles, as the image ships."""
    target = tmp_path_factory.mktemp("rootfs")
    options: list[str] = ["--no-apt"]
    if DEBOOTSTRAP:
        _debootstrap(target)
        options = ["--chroot"]
        (target / "etc/resolv.conf").write_text(Path("/etc/resolv.conf").read_text())
    run(INSTALL, "--root", target, *options, "--wheelhouse", wheelhouse,
        "--units", ROOT / "systemd")  # fmt: skip
    return target


def in_image(image: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a command of the image: inside it (debootstrap), or from the staging tree."""
    if DEBOOTSTRAP:
        return run("chroot", image, *args)
    first, *rest = args
    return run(image / str(first).lstrip("/"), *rest)


def test_the_venv_runs_the_project(image: Path) -> None:
    venv = image / "opt/poradovnik/venv"
    assert venv.is_symlink()
    assert os.readlink(venv).startswith("venv-")
    version = in_image(image, "/opt/poradovnik/venv/bin/poradovnik", "--version").stdout
    assert version.startswith("poradovnik ")
    imported = in_image(
        image, "/opt/poradovnik/venv/bin/python", "-c",
        "import poradovnik.cli, poradovnik.hub.app, poradovnik.sync_agent.provisioning",
    )  # fmt: skip
    assert imported.stderr == ""


def test_units_rules_and_user_are_in_place(image: Path) -> None:
    system = image / "etc/systemd/system"
    for role in ROLES:
        assert (system / f"poradovnik-{role}.service").is_file()
    assert (system / "mosquitto.service.d/poradovnik.conf").is_file()
    assert (image / "etc/udev/rules.d/60-poradovnik-printers.rules").is_file()
    assert (system / "multi-user.target.wants/poradovnik-firstboot.service").is_symlink()
    passwd = (image / "etc/passwd").read_text()
    assert "\nporadovnik:" in passwd or passwd.startswith("poradovnik:")
    assert (image / "etc/poradovnik").is_dir()
    assert (image / "var/lib/poradovnik").is_dir()


@pytest.fixture(scope="module")
def first_boots(image: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example boot file, made one device of each role, applied in its own copy of
    the image's /etc and /boot (the venv is shared)."""
    example = (FILESYSTEM / "boot/poradovnik.toml").read_text()
    devices: dict[str, Path] = {}
    for role in ROLES:
        device = tmp_path_factory.mktemp(f"device-{role}")
        for part in ("etc", "boot", "opt", "lib", "usr"):
            source = image / part
            if part in {"etc", "boot"}:
                shutil.copytree(source, device / part, symlinks=True)
            elif source.exists():
                (device / part).symlink_to(source)
        text = example.replace('role = "kiosk"', f'role = "{role}"')
        (device / "boot/firmware/poradovnik.toml").write_text(text)
        run(image / FIRSTBOOT, "--root", device)
        devices[role] = device
    return devices


@pytest.mark.parametrize("role", ROLES)
def test_first_boot_writes_valid_settings_and_enables_the_role(
    first_boots: dict[str, Path], image: Path, role: str
) -> None:
    device = first_boots[role]
    settings_file = device / "etc/poradovnik/poradovnik.toml"
    checked = run(image / "opt/poradovnik/venv/bin/poradovnik", "check-config", settings_file)
    assert checked.stdout == f"ok: {settings_file} (role {role}, site kosice-centrum)\n"
    settings = tomllib.loads(settings_file.read_text())
    assert settings["site"]["name"] == "Magistrát mesta Košice – Klientske centrum"
    wants = device / "etc/systemd/system/poradovnik.target.wants"
    assert sorted(p.name for p in wants.iterdir() if p.name.endswith(".service")) == [
        f"poradovnik-{role}.service"
    ]
    multi_user = device / "etc/systemd/system/multi-user.target.wants"
    assert (multi_user / "poradovnik.target").is_symlink()
    if role == "hub":
        assert settings["mqtt"]["username"] == "hub"
        assert len(settings["mqtt"]["password"]) >= 24
        if DEBOOTSTRAP:  # a staging tree has no Debian packages
            assert (multi_user / "mosquitto.service").is_symlink()
    else:
        # Not paired yet: it will show a code and ask the hub.
        assert "username" not in settings["mqtt"]
        assert settings["mqtt"]["host"] == "poradovnik-hub.local"
        assert settings["device"]["id"] == "kiosk-vstup"
        assert (device / "etc/hostname").read_text() == "kiosk-vstup\n"
    assert not (device / "boot/firmware/poradovnik.toml").exists()
    assert (device / "boot/firmware/poradovnik-applied.toml").exists()
    assert (settings_file.stat().st_mode & 0o777) == 0o600


def test_a_bad_boot_file_changes_nothing_and_says_why(
    image: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    device = tmp_path_factory.mktemp("device-bad")
    shutil.copytree(image / "etc", device / "etc", symlinks=True)
    shutil.copytree(image / "boot", device / "boot", symlinks=True)
    (device / "opt").symlink_to(image / "opt")
    (device / "boot/firmware/poradovnik.toml").write_text('role = "kiosk"\nsite = "Bad Site"\n')
    failed = subprocess.run(
        [image / FIRSTBOOT, "--root", device], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    error = (device / "boot/firmware/poradovnik-error.txt").read_text()
    assert "site" in error
    assert "hub: missing" in error or "lowercase" in error
    assert not (device / "etc/poradovnik/poradovnik.toml").exists()
    assert not (device / "etc/systemd/system/poradovnik.target.wants").exists()
