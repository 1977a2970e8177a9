"""The ``poradovnik`` command: help, version, check-config and clean failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from poradovnik import __version__
from poradovnik.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "config"


@pytest.fixture(autouse=True)
def _no_poradovnik_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own PORADOVNIK_* variables out of these tests."""
    for name in list(os.environ):
        if name.upper().startswith("PORADOVNIK_"):
            monkeypatch.delenv(name)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, prog_name="poradovnik")
    # An expected failure ends through click's SystemExit, never another exception.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def failed(result: Result, code: int) -> str:
    """Check a clean failure and return its stderr."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr
    for line in result.stderr.splitlines():
        assert line.startswith("poradovnik: "), line
    return result.stderr


def write(tmp_path: Path, text: str, name: str = "poradovnik.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- help and version --------------------------------------------------------------------

COMMANDS = [
    ([], "queue-management appliance"),
    (["hub"], "Run the hub"),
    (["kiosk"], "ticket kiosk"),
    (["display"], "lobby display"),
    (["counter"], "counter panel"),
    (["demo"], "demo office"),
    (["check-config"], "Check a settings file"),
    (["db"], "hub's database"),
    (["db", "upgrade"], "schema up to date"),
    (["db", "seed"], "--demo"),
]


@pytest.mark.parametrize(("command", "text"), COMMANDS, ids=lambda c: " ".join(c) or "main")
def test_help(command: list[str], text: str) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"Usage: poradovnik {' '.join(command)}".rstrip())
    assert text in result.stdout


def test_main_help_lists_every_command_and_the_env_conventions() -> None:
    output = run("--help").stdout
    for command in ("hub", "kiosk", "display", "counter", "demo", "check-config", "db"):
        assert f"  {command} " in output
    assert "PORADOVNIK_CONFIG" in output
    assert "PORADOVNIK_WEB__PORT=8081" in output


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"poradovnik {__version__}\n"


# --- check-config ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["hub", "kiosk", "display", "counter"])
def test_check_config_accepts_the_examples(role: str) -> None:
    path = EXAMPLES / f"{role}.toml"
    result = run("check-config", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"ok: {path} (role {role}, site kosice-centrum)\n"


def test_check_config_finds_the_file_every_way(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "display"\n[site]\nid = "bb-1"\n')
    expected = f"ok: {path} (role display, site bb-1)\n"
    assert run("--config", str(path), "check-config").stdout == expected
    assert run("check-config", "--config", str(path)).stdout == expected
    assert run("check-config", env={"PORADOVNIK_CONFIG": str(path)}).stdout == expected
    other = write(tmp_path, 'role = "hub"\n', "other.toml")
    # FILE beats --config.
    assert run("--config", str(other), "check-config", str(path)).stdout == expected


def test_check_config_warns_when_device_id_and_mqtt_username_differ(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "kiosk"\n[device]\nid = "k9"\n[mqtt]\nusername = "kiosk-k1"\n')
    result = run("check-config", str(path))
    assert result.exit_code == 0  # a warning, not a refusal
    assert result.stdout == f"ok: {path} (role kiosk, site office)\n"
    (warning,) = result.stderr.splitlines()
    assert warning.startswith(f"warning: {path}: [device] id 'k9' differs from [mqtt] username")
    assert "'kiosk-k1'" in warning
    # The same names, or the hub (whose device id is its own), give no warning.
    same = 'role = "kiosk"\n[device]\nid = "k1"\n[mqtt]\nusername = "k1"\n'
    same_file = write(tmp_path, same, "same.toml")
    hub_file = write(tmp_path, 'role = "hub"\n[mqtt]\nusername = "hub-account"\n', "hub.toml")
    for quiet in (same_file, hub_file):
        assert run("check-config", str(quiet)).stderr == ""


def test_check_config_env_wins(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[site]\nid = "a"\n')
    env = {"PORADOVNIK_ROLE": "counter", "PORADOVNIK_SITE__ID": "b"}
    result = run("check-config", str(path), env=env)
    assert result.exit_code == 0
    assert result.stdout == f"ok: {path} (role counter, site b)\n"


def test_check_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    stderr = failed(run("check-config", str(path)), 2)
    assert stderr.startswith(f"poradovnik: {path}: settings file not found")
    assert "--config" in stderr


def test_check_config_broken_toml(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[mqtt]\nport = = 1\n')
    stderr = failed(run("check-config", str(path)), 2)
    assert stderr.startswith(f"poradovnik: {path}: TOML syntax error: ")
    assert "(at line 3, column 8)" in stderr


def test_check_config_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[web]\nprot = 8081\n')
    stderr = failed(run("check-config", str(path)), 2)
    assert stderr == f"poradovnik: {path}: [web] prot: unknown key (did you mean port?)\n"


def test_check_config_bad_type(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[mqtt]\nport = "one"\n')
    stderr = failed(run("check-config", str(path)), 2)
    assert stderr.startswith(f"poradovnik: {path}: [mqtt] port: Input should be a valid integer")
    assert stderr.endswith("(got 'one')\n")


def test_check_config_port_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[mqtt]\nport = 70000\n')
    stderr = failed(run("check-config", str(path)), 2)
    assert stderr == (
        f"poradovnik: {path}: [mqtt] port: Input should be less than or equal to 65535 "
        "(got 70000)\n"
    )


def test_check_config_bad_timezone(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n[site]\ntimezone = "Europe/Kosice"\n')
    stderr = failed(run("check-config", str(path)), 2)
    assert stderr.startswith(f"poradovnik: {path}: [site] timezone: unknown time zone")
    assert "(got 'Europe/Kosice')" in stderr


def test_check_config_bad_env_value(tmp_path: Path) -> None:
    path = write(tmp_path, 'role = "hub"\n')
    result = run("check-config", str(path), env={"PORADOVNIK_WEB__PORT": "abc"})
    stderr = failed(result, 2)
    assert stderr.startswith("poradovnik: environment PORADOVNIK_WEB__PORT: [web] port: ")
    assert "valid integer" in stderr
    assert "(got 'abc')" in stderr


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, '[mqtt]\nport = 0\n[site]\nlanguages = ["de"]\n')
    stderr = failed(run("check-config", str(path)), 2)
    assert len(stderr.splitlines()) == 3
    assert f"poradovnik: {path}: role: missing" in stderr


def test_bad_settings_file_is_clean_outside_the_test_runner(tmp_path: Path) -> None:
    """The real program, in its own process: message, status 2, and no traceback."""
    path = write(tmp_path, 'role = "hub"\n[web]\nport = 99999\n')
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("PORADOVNIK_")}
    done = subprocess.run(
        [sys.executable, "-m", "poradovnik.cli", "check-config", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"poradovnik: {path}: [web] port: ")


# --- the other commands ------------------------------------------------------------------


ROLE_COMMANDS = [["hub"], ["kiosk"], ["display"], ["counter"], ["db", "upgrade"]]


@pytest.mark.parametrize("command", [*ROLE_COMMANDS, ["db", "seed", "--demo"]])
def test_role_commands_need_a_settings_file(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "absent.toml"
    stderr = failed(run("--config", str(path), *command), 2)
    assert stderr.startswith(f"poradovnik: {path}: settings file not found")


@pytest.mark.parametrize("command", [["hub"], ["db", "upgrade"], ["db", "seed", "--demo"]])
def test_hub_commands_refuse_another_role(tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, 'role = "kiosk"\n')
    stderr = failed(run(*command, "--config", str(path)), 2)
    assert stderr.startswith(f'poradovnik: {path}: role is "kiosk", but this command is for')
    assert "poradovnik kiosk" in stderr


@pytest.mark.parametrize(
    ("command", "module"),
    [
        (["hub"], "hub.app"),
        (["db", "upgrade"], "hub.app"),
        (["db", "seed", "--demo"], "hub.app"),
        (["demo"], "hub.demo"),
    ],
)
def test_hub_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], module: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    path = write(tmp_path, 'role = "hub"\n')
    stderr = failed(run("--config", str(path), *command), 3)
    assert stderr.startswith(
        "poradovnik: the hub is not installed on this device (pip install 'poradovnik[hub]')"
    )


def test_demo_needs_no_file_but_checks_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    stderr = failed(run("demo", env={"PORADOVNIK_WEB__PORT": "http"}), 2)
    assert stderr.startswith("poradovnik: environment PORADOVNIK_WEB__PORT: [web] port: ")


def test_db_seed_without_what(tmp_path: Path) -> None:
    result = run("db", "seed", "--config", str(write(tmp_path, 'role = "hub"\n')))
    assert result.exit_code == 2
    assert "--demo" in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = run("printer")
    assert result.exit_code == 2
    assert "No such command" in result.stderr


def test_cli_and_settings_import_no_hub_dependencies() -> None:
    """A kiosk has no SQLAlchemy or Flask: the command must load without them."""
    code = (
        "import sys, poradovnik.cli, common.settings; "
        "print(sorted(m for m in ('sqlalchemy', 'alembic', 'flask', 'hub.app') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "[]\n"


@pytest.mark.parametrize(
    ("database", "data_dir", "expected"),
    [
        (
            "postgresql+psycopg://postgres@127.0.0.1:1/test",
            "data",
            "cannot open the database postgresql+psycopg://postgres@127.0.0.1:1/test",
        ),
        (None, "/proc/poradovnik-nope", "cannot create the database's folder /proc/poradovnik"),
    ],
    ids=["unreachable", "folder"],
)
def test_a_database_that_cannot_be_opened_is_reported_cleanly(
    tmp_path: Path, database: str | None, data_dir: str, expected: str
) -> None:
    config = tmp_path / "hub.toml"
    url = f'[database]\nurl = "{database}"\n' if database else ""
    config.write_text(f'role = "hub"\n[data]\ndir = "{data_dir}"\n{url}')
    result = run("--config", str(config), "db", "upgrade")
    assert result.exit_code == 1
    assert result.output.startswith(f"poradovnik: {expected}")
    assert "Traceback" not in result.output
