"""``poradovnik city …``: the city's commands, and the city process with a real broker."""

from __future__ import annotations

import signal
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from city_helpers import CityBroker, TestBranch, batch, settings_file
from click.testing import CliRunner, Result
from process_helpers import Process, poradovnik_args

from city.store import CityStore
from poradovnik.cli import main

pytestmark = pytest.mark.postgres

Run = Callable[..., Result]


@pytest.fixture
def config(city_broker: CityBroker, tmp_path: Path) -> Path:
    return settings_file(tmp_path / "city.toml", city_broker.settings)


@pytest.fixture
def run(config: Path) -> Run:
    cli = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return cli.invoke(main, ["--config", str(config), "city", *args], input=input)

    return invoke


def test_branch_add_prints_the_uplink_section_once(run: Run, city_store: CityStore) -> None:
    added = run("branch", "add", "centrum", "--name", "Centrum", "--address", "Hlavná 1")
    assert added.exit_code == 0, added.output
    uplink = tomllib.loads(added.stdout)["uplink"]
    assert uplink["host"] == "city.example.sk"
    assert uplink["username"] == "branch-centrum"
    assert (uplink["tls"], uplink["catalogue"]) == (False, False)
    branch = city_store.branch("centrum")
    assert branch is not None
    assert uplink["password"] not in run("branch", "list").output
    assert "centrum\tbranch-centrum\t-\tCentrum\tHlavná 1\t0\n" in run("branch", "list").output
    # The progress: what a hub restored without its old database gives `db restore --ids-after`.
    city_store.store_batch("centrum", batch("centrum", 1, 3))
    assert "\tHlavná 1\t3\n" in run("branch", "list").output
    again = run("branch", "add", "centrum", "--name", "x", "--address", "y")
    assert again.exit_code == 1
    assert "exists already" in again.output
    assert "Traceback" not in again.output
    assert run("branch", "remove", "centrum").exit_code == 0
    assert run("branch", "remove", "centrum").exit_code == 1


def test_users_and_roles(run: Run, city_store: CityStore) -> None:
    run("branch", "add", "a", "--name", "A", "--address", "x")
    ok = run("user", "add", "eva", "--role", "a=viewer", "--password", "long password 1")
    assert ok.exit_code == 0, ok.output
    admin = run("user", "add", "boss", "--admin", "--password", "long password 2")
    assert admin.exit_code == 0, admin.output
    assert city_store.authenticate("eva", "long password 1") is not None
    neither = run("user", "add", "x", "--password", "long password 3")
    assert neither.exit_code == 2
    bad = run("user", "add", "x", "--role", "a=boss", "--password", "long password 3")
    assert bad.exit_code == 2
    unknown = run("user", "add", "x", "--role", "zz=viewer", "--password", "long password 3")
    assert unknown.exit_code == 1
    assert "no branch zz" in unknown.output


def test_broker_config_writes_one_account_per_branch(run: Run, config: Path) -> None:
    run("branch", "add", "a", "--name", "A", "--address", "x")
    run("branch", "add", "b", "--name", "B", "--address", "x")
    done = run("broker-config")
    assert done.exit_code == 0, done.output
    directory = config.parent / "cli-broker"
    assert (
        f"listener {tomllib.loads(config.read_text())['city']['mqtt_port']} 127.0.0.1"
        in (directory / "mosquitto.conf").read_text()
    )
    users = [line.split(":")[0] for line in (directory / "passwd").read_text().splitlines()]
    assert [u for u in users if not u.startswith("#")] == ["city", "branch-a", "branch-b"]
    acl = (directory / "acl").read_text()
    assert "user branch-a\ntopic write poradovnik/v1/a/queue/+" in acl
    assert "topic read poradovnik/v1/a/city/ack" in acl
    assert "topic write poradovnik/v1/b/" not in acl.split("user branch-b")[0]


def test_a_sqlite_database_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "city.toml"
    config.write_text('role = "city"\n[city]\ndatabase_url = "sqlite:////tmp/city.db"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "city", "db", "upgrade"])
    assert result.exit_code == 2
    assert "[city] database_url: SQLite cannot be the city's database" in result.output
    assert "PostgreSQL" in result.output


def test_the_city_process_stores_history_and_stops_cleanly(
    run: Run,
    config: Path,
    city_broker: CityBroker,
    city_store: CityStore,
    processes: Callable[..., Process],
) -> None:
    added = run("branch", "add", "a", "--name", "A", "--address", "x")
    password = tomllib.loads(added.stdout)["uplink"]["password"]
    city_broker.write()  # the test's broker runs on files of its own: add the branch there
    branch = TestBranch(city_broker, "a", password)
    try:
        city = processes(poradovnik_args("--config", str(config), "city"), name="city")
        branch.wait_for_ack(0, timeout=30)
        branch.send(batch("a", 1, 20))
        branch.wait_for_ack(20)
        assert city.stop(signal.SIGTERM) == 0, city.describe()
    finally:
        branch.stop()
    assert city_store.progress()["a"].seq == 20
