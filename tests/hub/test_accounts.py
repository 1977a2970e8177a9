"""Device accounts on the command line: add, list, remove, and the broker's files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from poradovnik.cli import main
from sync_agent.broker_accounts import verify_password


@pytest.fixture
def config(tmp_path: Path) -> Path:
    # Root would give the files to Mosquitto's user; the test reads them as itself.
    run_as = 'run_as = "root"\n' if os.geteuid() == 0 else ""
    path = tmp_path / "hub.toml"
    path.write_text(
        'role = "hub"\n[site]\nid = "mesto"\n[data]\ndir = "data"\n'
        '[mqtt]\npassword = "hub-secret-for-tests"\n[broker]\ndir = "broker"\n' + run_as
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result.exit_code, result.output


def test_add_list_remove_and_write_the_broker_files(config: Path) -> None:
    code, out = run(config, "device", "add", "p1", "--role", "counter", "--counter", "1")
    assert code == 0, out
    password = out.split('password = "')[1].split('"')[0]
    assert run(config, "device", "add", "lobby", "--role", "display")[0] == 0
    code, out = run(config, "device", "list")
    assert out.splitlines() == ["lobby\tdisplay", "p1\tcounter counters 1"]
    code, out = run(config, "broker", "config")
    assert code == 0, out
    broker = config.parent / "broker"
    hashes = dict(
        line.split(":", 1)
        for line in (broker / "passwd").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert verify_password(password, hashes["p1"])
    assert verify_password("hub-secret-for-tests", hashes["hub"])
    acl = (broker / "acl").read_text()
    assert "topic write poradovnik/v1/mesto/counter/1/cmd" in acl
    assert run(config, "device", "remove", "lobby") == (0, "removed lobby\n")
    code, out = run(config, "device", "remove", "lobby")
    assert (code, out) == (1, "poradovnik: no device 'lobby' has a broker account\n")


def test_bad_accounts_are_refused_clearly(config: Path) -> None:
    code, out = run(config, "device", "add", "p1", "--role", "counter")
    assert code == 1
    assert "needs its counters" in out
    code, out = run(config, "device", "add", "hub", "--role", "display")
    assert (code, "[mqtt] settings" in out) == (1, True)
    assert "Traceback" not in out


def test_the_hub_account_needs_a_password(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'role = "hub"\n[data]\ndir = "data"\n[broker]\ndir = "{tmp_path}/b"\n')
    code, out = run(config, "broker", "config")
    assert code == 1
    assert "[mqtt] password" in out
