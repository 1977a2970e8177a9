"""The systemd units in systemd/: they verify cleanly and rate as safe in systemd's review."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.settings import WebSettings
from hub.web.connections import RESERVED_FILES

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
INSTALLED_COMMAND = "/opt/poradovnik/venv/bin/poradovnik"
ROLES = ("hub", "kiosk", "display", "counter", "city")
ROLE_UNITS = tuple(f"poradovnik-{role}.service" for role in ROLES)
SERVICES = (*ROLE_UNITS, "poradovnik-broker-reload.service")
ALL_UNITS = (*SERVICES, "poradovnik.target", "poradovnik-broker-reload.path")
MAX_EXPOSURE = 3.0

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is missing (Debian package 'systemd')"
)


def read_unit(path: Path) -> configparser.RawConfigParser:
    """A unit file as sections of settings; repeated keys keep every value, one a line."""
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",), comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    values: dict[tuple[str, str], list[str]] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            parser.add_section(section)
            continue
        key, value = line.split("=", 1)
        values.setdefault((section, key), []).append(value)
    for (section, key), items in values.items():
        parser.set(section, key, "\n".join(items))
    return parser


@pytest.fixture(scope="module")
def unit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copies of the units whose command is this checkout's ``poradovnik`` (which exists).

    ``systemd-analyze verify`` checks that each command is executable; on the appliance
    it is /opt/poradovnik/venv/bin/poradovnik, which a build machine does not have.
    """
    command = Path(sys.executable).parent / "poradovnik"
    assert command.exists(), f"{command} is missing: install the project into the venv"
    directory = tmp_path_factory.mktemp("units")
    for name in ALL_UNITS:
        text = (UNITS / name).read_text(encoding="utf-8")
        (directory / name).write_text(text.replace(INSTALLED_COMMAND, str(command)))
    return directory


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", **(env or {})},
    )


@needs_analyze
@pytest.mark.parametrize("name", ALL_UNITS)
def test_unit_verifies_without_a_word(unit_dir: Path, name: str) -> None:
    # verify exits 0 on warnings too: only silence means a clean unit.
    result = analyze("verify", "--man=no", str(unit_dir / name))
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@needs_analyze
@pytest.mark.parametrize("service", ["mosquitto", "nginx"])
def test_the_drop_in_verifies(tmp_path: Path, service: str) -> None:
    if not Path(f"/lib/systemd/system/{service}.service").exists():
        pytest.skip(f"Debian's {service}.service is not installed here (package '{service}')")
    drop_in = tmp_path / f"{service}.service.d"
    drop_in.mkdir()
    shutil.copy(UNITS / f"{service}.service.d" / "poradovnik.conf", drop_in)
    # A trailing ':' keeps the standard search path after ours, as systemd documents.
    env = {"SYSTEMD_UNIT_PATH": f"{tmp_path}:"}
    result = analyze("verify", "--man=no", f"{service}.service", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
    # The same check does read the drop-in: a flaw in it is reported.
    with (drop_in / "poradovnik.conf").open("a") as conf:
        conf.write("NoSuchSetting=1\n")
    flawed = analyze("verify", "--man=no", f"{service}.service", env=env)
    assert "poradovnik.conf" in flawed.stderr


def exposure(output: str) -> float:
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    assert match, output
    return float(match[1])


@needs_analyze
@pytest.mark.parametrize("name", SERVICES)
def test_unit_rates_safe_in_systemds_security_review(unit_dir: Path, name: str) -> None:
    result = analyze("security", "--offline=true", "--no-pager", str(unit_dir / name))
    assert result.returncode == 0, result.stderr
    level = exposure(result.stdout)
    assert level <= MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize("name", ROLE_UNITS)
def test_role_units_are_supervised_services_of_an_unprivileged_user(name: str) -> None:
    service = read_unit(UNITS / name)["Service"]
    role = name.removeprefix("poradovnik-").removesuffix(".service")
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) > 0
    assert service["Restart"] == "always"
    assert service["User"] == "poradovnik"
    assert service["CapabilityBoundingSet"] == ""
    assert service["ProtectSystem"] == "strict"
    assert "/var/lib/poradovnik" in service["ReadWritePaths"].split()
    assert service["ExecStart"].split() == [
        INSTALLED_COMMAND,
        "--config",
        "/etc/poradovnik/poradovnik.toml",
        role,
    ]
    assert read_unit(UNITS / name)["Install"]["WantedBy"] == "poradovnik.target"


def test_role_units_share_one_hardening() -> None:
    def hardening(name: str) -> list[str]:
        text = (UNITS / name).read_text(encoding="utf-8")
        block = text.split("# Hardening:", 1)[1].split("RestrictAddressFamilies", 1)[0]
        return [line for line in block.splitlines() if not line.startswith(("#", "ProcSubset"))]

    first, *rest = ROLE_UNITS
    for name in rest:
        assert hardening(name) == hardening(first), name


def test_the_hub_may_open_files_for_every_live_page_and_more() -> None:
    service = read_unit(UNITS / "poradovnik-hub.service")["Service"]
    connections = int(service["LimitNOFILE"]) - RESERVED_FILES
    assert connections >= 4 * WebSettings().live_max_clients


@pytest.mark.parametrize(
    ("role", "groups", "devices"),
    [
        ("hub", {"mosquitto"}, None),
        ("city", {"mosquitto"}, None),
        ("kiosk", {"video", "render", "input", "audio", "lp", "dialout"}, {"char-drm", "char-usb"}),
        ("display", {"video", "render", "audio", "dialout"}, {"char-drm", "char-alsa"}),
        ("counter", {"gpio", "i2c"}, {"char-gpiochip"}),
    ],
)
def test_each_role_gets_only_its_hardwares_groups_and_devices(
    role: str, groups: set[str], devices: set[str] | None
) -> None:
    service = read_unit(UNITS / f"poradovnik-{role}.service")["Service"]
    assert set(service["SupplementaryGroups"].split()) == groups
    if devices is None:
        assert service["PrivateDevices"] == "yes"
    else:
        assert service["DevicePolicy"] == "closed"
        allowed = {line.split()[0] for line in service["DeviceAllow"].splitlines()}
        assert devices <= allowed
    screens = role in {"kiosk", "display"}
    assert ("SDL_VIDEODRIVER=kmsdrm" in service.get("Environment", "")) == screens


@needs_analyze
def test_the_first_boot_unit_verifies(tmp_path: Path) -> None:
    filesystem = ROOT / "image-build/modules/poradovnik/filesystem/root"
    unit = "poradovnik-firstboot.service"
    text = (filesystem / "etc/systemd/system" / unit).read_text(encoding="utf-8")
    script = "/usr/local/sbin/poradovnik-firstboot"
    (tmp_path / unit).write_text(text.replace(script, str(filesystem / script.lstrip("/"))))
    result = analyze("verify", "--man=no", str(tmp_path / unit))
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""
