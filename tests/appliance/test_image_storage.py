"""poradovnik-storage: the data partition on a disk, and the read-only root's switch.

The disk is a sparse file laid out as a Raspberry Pi OS card (a FAT boot partition, an
ext4 root, free space after it) on a loop device, so the partition is made, formatted
and filled for real. Needs root, loop devices and Debian's fdisk and e2fsprogs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from disk_helpers import attached_card, mounted, needs_disks, partitions, sh

ROOT = Path(__file__).resolve().parents[2]
STORAGE = ROOT / "image-build/modules/poradovnik/filesystem/root/usr/local/sbin/poradovnik-storage"
CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootwait quiet\n"

pytestmark = [pytest.mark.slow, needs_disks]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[str]:
    """A 600 MiB card whose root ends at 320 MiB."""
    with attached_card(tmp_path / "card.img", size_mib=600, root_mib=256) as loop:
        yield loop


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[str]:
    """A card whose root fills it, as a stock image after its first start."""
    with attached_card(tmp_path / "full.img", size_mib=400, root_mib=None) as loop:
        yield loop


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A device's root with Poradovník's settings, state and venv on it."""
    device = tmp_path / "device"
    settings = device / "etc/poradovnik/poradovnik.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text('role = "hub"\n')
    settings.chmod(0o600)
    state = device / "var/lib/poradovnik"
    state.mkdir(parents=True)
    (state / "hub.db").write_bytes(b"SQLite format 3\0")
    venv = device / "opt/poradovnik/venv-1.0"
    venv.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (device / "opt/poradovnik/venv").symlink_to("venv-1.0")
    (device / "etc/fstab").write_text("proc /proc proc defaults 0 0\n")
    boot = device / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "cmdline.txt").write_text(CMDLINE)
    return device


def storage(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return sh(STORAGE, *args, check=False)


def test_the_data_partition_takes_the_free_space_and_the_data(
    disk: str, tree: Path, tmp_path: Path
) -> None:
    made = storage("data", "--disk", disk, "--root", tree)
    assert made.returncode == 0, made.stderr

    (number, _, end), = partitions(disk)[2:]  # fmt: skip
    sectors = int(sh("blockdev", "--getsz", disk).stdout)
    assert (number, end) == (3, sectors - 1)
    part = f"{disk}p3"
    assert sh("blkid", "-s", "LABEL", "-o", "value", part).stdout.strip() == "poradovnik-data"
    assert sh("blkid", "-s", "TYPE", "-o", "value", part).stdout.strip() == "ext4"

    with mounted(part, tmp_path / "mnt") as data:
        settings = data / "etc/poradovnik.toml"
        assert settings.read_text() == 'role = "hub"\n'
        assert settings.stat().st_mode & 0o777 == 0o600
        assert (data / "state/hub.db").read_bytes() == b"SQLite format 3\0"
        assert os.readlink(data / "opt/venv") == "venv-1.0"
    for moved in ("etc/poradovnik", "var/lib/poradovnik", "opt/poradovnik"):
        assert list((tree / moved).iterdir()) == []
    assert (tree / "srv/poradovnik").is_dir()
    fstab = (tree / "etc/fstab").read_text().splitlines()
    assert fstab[0] == "proc /proc proc defaults 0 0"
    entries = [line.split() for line in fstab if not line.startswith("#")][1:]
    assert [entry[:3] for entry in entries] == [
        ["LABEL=poradovnik-data", "/srv/poradovnik", "ext4"],
        ["/srv/poradovnik/etc", "/etc/poradovnik", "none"],
        ["/srv/poradovnik/state", "/var/lib/poradovnik", "none"],
        ["/srv/poradovnik/opt", "/opt/poradovnik", "none"],
    ]

    again = storage("data", "--disk", disk, "--root", tree)
    assert again.returncode == 0
    assert "set up already" in again.stderr
    assert len(partitions(disk)) == 3
    assert (tree / "etc/fstab").read_text().count("LABEL=poradovnik-data") == 1


def test_a_card_without_free_space_gets_a_clear_error_and_keeps_its_data(
    full_disk: str, tree: Path
) -> None:
    before = partitions(full_disk)
    failed = storage("data", "--disk", full_disk, "--root", tree)
    assert failed.returncode == 1
    assert "MiB free after its last partition" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert partitions(full_disk) == before
    assert (tree / "etc/fstab").read_text() == "proc /proc proc defaults 0 0\n"
    assert (tree / "etc/poradovnik/poradovnik.toml").read_text() == 'role = "hub"\n'


def test_read_only_needs_the_data_partition(tree: Path) -> None:
    refused = storage("read-only", "on", "--root", tree)
    assert refused.returncode == 1
    assert "needs the data partition" in refused.stderr
    assert (tree / "boot/firmware/cmdline.txt").read_text() == CMDLINE


def test_read_only_on_and_off_set_the_next_start(disk: str, tree: Path) -> None:
    assert storage("data", "--disk", disk, "--root", tree).returncode == 0
    cmdline = tree / "boot/firmware/cmdline.txt"

    on = storage("read-only", "on", "--root", tree)
    assert (on.returncode, on.stdout) == (0, "changed\n")
    assert cmdline.read_text() == "overlayroot=tmpfs " + CMDLINE
    assert storage("read-only", "on", "--root", tree).stdout == "unchanged\n"
    assert cmdline.read_text().count("overlayroot") == 1

    off = storage("read-only", "off", "--root", tree)
    assert (off.returncode, off.stdout) == (0, "changed\n")
    assert cmdline.read_text() == CMDLINE
    assert storage("read-only", "off", "--root", tree).stdout == "unchanged\n"


def test_a_data_partition_left_by_an_interrupted_run_is_used_again(
    disk: str, tree: Path, tmp_path: Path
) -> None:
    subprocess.run(
        ["sfdisk", "--quiet", "--append", "--no-reread", "--no-tell-kernel", disk],
        input=",+,L\n",
        text=True,
        check=True,
    )
    sh("partx", "--update", "--nr", "3", disk)
    sh("mkfs.ext4", "-q", "-F", "-L", "poradovnik-data", f"{disk}p3")

    made = storage("data", "--disk", disk, "--root", tree)
    assert made.returncode == 0, made.stderr
    assert f"using the data partition {disk}p3 made before" in made.stderr
    assert len(partitions(disk)) == 3
    with mounted(f"{disk}p3", tmp_path / "mnt") as data:
        assert (data / "etc/poradovnik.toml").read_text() == 'role = "hub"\n'
    assert "LABEL=poradovnik-data" in (tree / "etc/fstab").read_text()
