"""The image's install steps, run into a temporary root, then first boot for each role.

The steps run into a Debian bookworm root made with debootstrap, packages and all,
inside it with chroot, as the image build runs them: where this runs as root with
debootstrap and deb.debian.org (or PORADOVNIK_TEST_MIRROR) at hand, about two
minutes. Elsewhere, or with PORADOVNIK_TEST_DEBOOTSTRAP=0, they run into a staging
directory: no Debian packages, the host's Python builds the venv. Either way the
project comes from a wheelhouse made by image-build/build-image, so the venv is
installed without an index, as on a device.

PORADOVNIK_TEST_ARCH=arm64 makes the Debian root arm64 and the wheelhouse the
image's own, run under QEMU as the image build runs it (needs Debian's
qemu-user-static with binfmt_misc; about ten minutes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from disk_helpers import attached_card, mounted, needs_disks
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "image-build" / "modules" / "poradovnik"
FILESYSTEM = MODULE / "filesystem"
INSTALL = FILESYSTEM / "tools" / "install-poradovnik"
FIRSTBOOT = "usr/local/sbin/poradovnik-firstboot"
DEBOOTSTRAP = (
    os.environ.get("PORADOVNIK_TEST_DEBOOTSTRAP", "1") == "1"
    and os.geteuid() == 0
    and shutil.which("debootstrap") is not None
)
MIRROR = os.environ.get("PORADOVNIK_TEST_MIRROR", "http://deb.debian.org/debian")
ROLES = ("hub", "kiosk", "display", "counter")
ARCH = os.environ.get("PORADOVNIK_TEST_ARCH")
"""A Debian architecture other than this machine's for the root, e.g. arm64."""

pytestmark = [
    pytest.mark.slow,
    # The first test builds the wheelhouse and a Debian root from the network: minutes on
    # a busy machine, far beyond the suite's default per-test limit.
    pytest.mark.timeout(1200),
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
    """This checkout's wheel and its dependencies' wheels, as the image build makes them
    (for this machine instead of arm64), once per session."""
    directory = tmp_path_factory.mktemp("wheelhouse")
    native = [] if ARCH == "arm64" else ["--native"]
    run(ROOT / "image-build/build-image", *native, "--wheelhouse", directory)
    return directory


def _debootstrap(target: Path) -> None:
    arch = [f"--arch={ARCH}"] if ARCH else []
    run("debootstrap", *arch, "--variant=minbase", "--include=systemd,python3,python3-venv",
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
    """Run a command of an image or device tree: inside it (debootstrap), or from the
    staging tree."""
    if DEBOOTSTRAP:
        return run("chroot", image, *args)
    first, *rest = args
    return run(image / str(first).lstrip("/"), *rest)


def seen_from(tree: Path, path: str) -> str:
    """``path`` of ``tree`` as :func:`in_image`'s commands see it."""
    return path if DEBOOTSTRAP else f"{tree}{path}"


@pytest.fixture(scope="module")
def new_device(
    image: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Path]]:
    """Makes device trees from the image, each a writable copy of its own: an overlay
    mount of a Debian root (with /dev, /proc and /sys for its disks), or on a staging
    tree copies of /etc, /boot and /opt beside links to the rest."""
    with contextlib.ExitStack() as mounts:

        def make(name: str) -> Path:
            base = tmp_path_factory.mktemp(f"device-{name}")
            device = base / "root"
            device.mkdir()
            if DEBOOTSTRAP:
                (base / "upper").mkdir()
                (base / "work").mkdir()
                options = f"lowerdir={image},upperdir={base / 'upper'},workdir={base / 'work'}"
                run("mount", "-t", "overlay", "overlay", "-o", options, device)
                mounts.callback(run, "umount", device)
                for system in ("dev", "proc", "sys"):
                    run("mount", "--bind", f"/{system}", device / system)
                    mounts.callback(run, "umount", device / system)
                return device
            for part in ("etc", "boot", "opt", "lib", "usr"):
                if part in {"etc", "boot", "opt"}:
                    shutil.copytree(image / part, device / part, symlinks=True)
                elif (image / part).exists():
                    (device / part).symlink_to(image / part)
            return device

        yield make


def first_boot(
    image: Path, device: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs the image's first boot on a device tree: inside it, or on it from outside."""
    variables = [f"{k}={v}" for k, v in (env or {}).items()]
    inside = ["chroot", device, "env", *variables, f"/{FIRSTBOOT}", "--root", "/"]
    outside = ["env", *variables, image / FIRSTBOOT, "--root", device]
    command = inside if DEBOOTSTRAP else outside
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300, check=False
    )


def boot_file(role: str, extra: str = "") -> str:
    """The example boot file, made a device of ``role``, with ``extra`` top-level keys."""
    example = (FILESYSTEM / "boot/poradovnik.toml").read_text()
    return example.replace('role = "kiosk"', f'role = "{role}"\n{extra}')


def test_the_venv_runs_the_project(image: Path) -> None:
    venv = image / "opt/poradovnik/venv"
    assert venv.is_symlink()
    assert os.readlink(venv).startswith("venv-")
    version = in_image(image, "/opt/poradovnik/venv/bin/poradovnik", "--version").stdout
    assert version.startswith("poradovnik ")
    imported = in_image(
        image, "/opt/poradovnik/venv/bin/python", "-c",
        "import poradovnik.cli, hub.app, sync_agent.provisioning",
    )  # fmt: skip
    assert imported.stderr == ""


def test_units_rules_and_user_are_in_place(image: Path) -> None:
    system = image / "etc/systemd/system"
    for role in ROLES:
        assert (system / f"poradovnik-{role}.service").is_file()
    assert (system / "mosquitto.service.d/poradovnik.conf").is_file()
    assert (image / "etc/udev/rules.d/60-poradovnik-printers.rules").is_file()
    for script in ("firstboot", "storage", "update", "update-office"):
        assert os.access(image / f"usr/local/sbin/poradovnik-{script}", os.X_OK)
    assert (system / "multi-user.target.wants/poradovnik-firstboot.service").is_symlink()
    passwd = (image / "etc/passwd").read_text()
    assert "\nporadovnik:" in passwd or passwd.startswith("poradovnik:")
    assert (image / "etc/poradovnik").is_dir()
    assert (image / "var/lib/poradovnik").is_dir()


@pytest.fixture(scope="module")
def first_boots(image: Path, new_device: Callable[[str], Path]) -> dict[str, Path]:
    """The example boot file, made one device of each role, applied on its own device."""
    devices: dict[str, Path] = {}
    for role in ROLES:
        device = new_device(role)
        (device / "boot/firmware/poradovnik.toml").write_text(boot_file(role))
        booted = first_boot(image, device)
        assert booted.returncode == 0, booted.stderr
        devices[role] = device
    return devices


@pytest.mark.parametrize("role", ROLES)
def test_first_boot_writes_valid_settings_and_enables_the_role(
    first_boots: dict[str, Path], image: Path, role: str
) -> None:
    device = first_boots[role]
    settings_file = device / "etc/poradovnik/poradovnik.toml"
    seen = seen_from(device, "/etc/poradovnik/poradovnik.toml")
    checked = in_image(device, "/opt/poradovnik/venv/bin/poradovnik", "check-config", seen)
    assert checked.stdout == f"ok: {seen} (role {role}, site kosice-centrum)\n"
    settings = tomllib.loads(settings_file.read_text())
    assert settings["site"]["name"] == "Magistrát mesta Košice – Klientske centrum"
    wants = device / "etc/systemd/system/poradovnik.target.wants"
    assert sorted(p.name for p in wants.iterdir() if p.name.endswith(".service")) == [
        f"poradovnik-{role}.service"
    ]
    multi_user = device / "etc/systemd/system/multi-user.target.wants"
    assert (multi_user / "poradovnik.target").is_symlink()
    front = device / "etc/poradovnik/nginx.conf"
    if role == "hub":
        assert settings["mqtt"]["username"] == "hub"
        assert len(settings["mqtt"]["password"]) >= 24
        # Behind nginx: on loopback, trusting one proxy; a certificate made for its name.
        assert settings["web"] == {
            "host": "127.0.0.1",
            "proxy_hops": 1,
            "allowed_hosts": ["kiosk-vstup", "kiosk-vstup.local"],
        }
        assert "ssl_certificate /etc/poradovnik/tls/portal.crt;" in front.read_text()
        assert (device / "etc/poradovnik/tls/portal.key").stat().st_mode & 0o777 == 0o600
        names = run("openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                    device / "etc/poradovnik/tls/portal.crt").stdout  # fmt: skip
        assert "DNS:kiosk-vstup, DNS:kiosk-vstup.local" in names  # the example's device_id
        if DEBOOTSTRAP:  # a staging tree has no Debian packages
            assert (multi_user / "mosquitto.service").is_symlink()
            assert (multi_user / "nginx.service").is_symlink()
            in_image(device, "nginx", "-t", "-q", "-c", "/etc/poradovnik/nginx.conf")
    else:
        assert not front.exists()
        # Not paired yet: it will show a code and ask the hub.
        assert "username" not in settings["mqtt"]
        assert settings["mqtt"]["host"] == "poradovnik-hub.local"
        assert settings["device"]["id"] == "kiosk-vstup"
        assert (device / "etc/hostname").read_text() == "kiosk-vstup\n"
    assert not (device / "boot/firmware/poradovnik.toml").exists()
    assert (device / "boot/firmware/poradovnik-applied.toml").exists()
    assert (settings_file.stat().st_mode & 0o777) == 0o600


def test_a_bad_boot_file_changes_nothing_and_says_why(
    image: Path, new_device: Callable[[str], Path]
) -> None:
    device = new_device("bad")
    (device / "boot/firmware/poradovnik.toml").write_text('role = "kiosk"\nsite = "Bad Site"\n')
    failed = first_boot(image, device)
    assert failed.returncode == 1
    error = (device / "boot/firmware/poradovnik-error.txt").read_text()
    assert "site" in error
    assert "hub: missing" in error or "lowercase" in error
    assert not (device / "etc/poradovnik/poradovnik.toml").exists()
    assert not (device / "etc/systemd/system/poradovnik.target.wants").exists()
    assert (device / "boot/firmware/poradovnik.toml").exists()


@needs_disks
def test_a_read_only_kiosk_gets_its_data_partition_and_an_overlay_from_its_next_start(
    image: Path, new_device: Callable[[str], Path], tmp_path: Path
) -> None:
    device = new_device("read-only")
    cmdline = "console=tty1 root=PARTUUID=4e639091-02 rootwait\n"
    (device / "boot/firmware/cmdline.txt").write_text(cmdline)
    (device / "boot/firmware/poradovnik.toml").write_text(boot_file("kiosk", "read_only = true"))
    with attached_card(tmp_path / "card.img", size_mib=600, root_mib=256) as disk:
        booted = first_boot(image, device, {"PORADOVNIK_DATA_DISK": disk})
        assert booted.returncode == 0, booted.stderr
        assert "restarting to make its root read-only" in booted.stderr
        assert f"the data partition {disk}p3 holds /etc/poradovnik" in booted.stderr
        assert (device / "boot/firmware/cmdline.txt").read_text() == "overlayroot=tmpfs " + cmdline
        fstab = (device / "etc/fstab").read_text()
        assert "LABEL=poradovnik-data  /srv/poradovnik  ext4" in fstab
        assert list((device / "etc/poradovnik").iterdir()) == []
        with mounted(f"{disk}p3", tmp_path / "data") as data:
            settings = tomllib.loads((data / "etc/poradovnik.toml").read_text())
            assert settings["role"] == "kiosk"
            assert (data / "opt/venv").is_symlink()
    wants = device / "etc/systemd/system/poradovnik.target.wants"
    assert (wants / "poradovnik-kiosk.service").is_symlink()
    assert (device / "boot/firmware/poradovnik-applied.toml").exists()


def test_the_arm64_wheelhouse_holds_every_wheel_a_raspberry_pi_needs(tmp_path: Path) -> None:
    """The image's wheelhouse (from PyPI): what a Pi installs without an index, with the
    requirements decided for the Pi (aarch64), not for the machine that builds it."""
    wheelhouse = tmp_path / "wheelhouse"
    run(ROOT / "image-build/build-image", "--wheelhouse", wheelhouse)
    wheels = {path.name for path in wheelhouse.glob("*.whl")}
    assert not [name for name in wheels if "x86_64" in name]
    names = {canonicalize_name(name.split("-")[0]) for name in wheels}
    (project,) = wheelhouse.glob("poradovnik-*.whl")
    with zipfile.ZipFile(project) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [
            Requirement(line.removeprefix("Requires-Dist:").strip())
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    pi = {"platform_machine": "aarch64", "sys_platform": "linux", "python_version": "3.11"}
    needed = {
        canonicalize_name(requirement.name)
        for requirement in requires
        for role in ROLES
        if requirement.marker is None or requirement.marker.evaluate({**pi, "extra": role})
    }
    assert "lgpio" in needed
    assert needed <= names, needed - names
