"""Cards for the appliance's storage tests: sparse image files on loop devices."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

MIB = 1024 * 1024

needs_disks = pytest.mark.skipif(
    os.geteuid() != 0
    or any(shutil.which(tool) is None for tool in ("losetup", "sfdisk", "mkfs.ext4")),
    reason="needs root, loop devices and Debian's fdisk and e2fsprogs",
)
"""Marks a test that makes partitions on a loop device."""


def sh(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs a command; with ``check``, fails the test with its output if it fails."""
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, check=False
    )
    if check:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@contextlib.contextmanager
def attached_card(path: Path, size_mib: int, root_mib: int | None) -> Iterator[str]:
    """A card laid out as Raspberry Pi OS's, a FAT boot partition and an ext4 root (to
    the end of the card when ``root_mib`` is None), on a loop device while in use."""
    with path.open("wb") as image:
        image.truncate(size_mib * MIB)
    root = f",{root_mib}M,L" if root_mib else ",+,L"
    layout = f"label: dos\n,64M,c\n{root}\n"
    subprocess.run(["sfdisk", "--quiet", path], input=layout, text=True, check=True)
    loop = sh("losetup", "--find", "--show", "--partscan", path).stdout.strip()
    try:
        yield loop
    finally:
        sh("losetup", "--detach", loop, check=False)


@contextlib.contextmanager
def mounted(device: str, where: Path) -> Iterator[Path]:
    """``device`` mounted read-only at ``where`` while in use."""
    where.mkdir(parents=True, exist_ok=True)
    sh("mount", "-o", "ro", device, where)
    try:
        yield where
    finally:
        sh("umount", where)


def partitions(disk: str) -> list[tuple[int, int, int]]:
    """(number, first sector, last sector) of each partition in the disk's table."""
    numbers = [int(n) for n in sh("partx", "-g", "-o", "NR,START,END", disk).stdout.split()]
    return [(numbers[i], numbers[i + 1], numbers[i + 2]) for i in range(0, len(numbers), 3)]
