"""Safe by default: settings that would open the hub are refused, private files stay private.

Replays what the example settings allowed: forwarded headers trusted from anyone
(a rotating X-Forwarded-For escaped every per-address limit), the placeholder broker
password that became the hub's all-powerful account, files readable by every user
under a lax umask, and ticket links that followed X-Forwarded-Host.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from common.settings import Settings, WebSettings
from hub.app import open_queue, seed_demo, web_app
from hub.store import Store, sqlite_url
from poradovnik.cli import main
from sync_agent.outbox import Outbox
from sync_agent.protocol import CounterCommand

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "config"


@pytest.fixture(autouse=True)
def _no_poradovnik_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own PORADOVNIK_* variables out of these tests."""
    for name in list(os.environ):
        if name.upper().startswith("PORADOVNIK_"):
            monkeypatch.delenv(name)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="poradovnik")


def hub_config(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f'role = "hub"\n[data]\ndir = "data"\n{extra}', encoding="utf-8")
    return path


# -- forwarded headers -----------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "poradovnik-hub.local"])
def test_check_config_refuses_trusted_proxies_on_an_open_address(tmp_path: Path, host: str) -> None:
    config = hub_config(
        tmp_path, f'[web]\nhost = "{host}"\nproxy_hops = 1\npublic_url = "https://p.example.sk"\n'
    )
    result = run("check-config", str(config))
    assert result.exit_code == 2
    assert f"{config}: [web] proxy_hops: trusts X-Forwarded-For" in result.stderr
    assert "127.0.0.1" in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "unix:/run/poradovnik/web.sock"])
def test_check_config_accepts_trusted_proxies_on_a_loopback_address(
    tmp_path: Path, host: str
) -> None:
    config = hub_config(
        tmp_path, f'[web]\nhost = "{host}"\nproxy_hops = 1\npublic_url = "https://p.example.sk"\n'
    )
    result = run("check-config", str(config))
    assert result.exit_code == 0, result.output


def test_behind_a_proxy_the_portals_address_is_configured(tmp_path: Path) -> None:
    config = hub_config(tmp_path, '[web]\nhost = "127.0.0.1"\nproxy_hops = 1\n')
    result = run("check-config", str(config))
    assert result.exit_code == 2
    assert "[web] proxy_hops: behind a proxy, the portal's address" in result.stderr


def test_the_example_is_safe(tmp_path: Path) -> None:
    settings = run("check-config", str(EXAMPLES / "hub.toml"))
    assert settings.exit_code == 0, settings.output
    text = (EXAMPLES / "hub.toml").read_text(encoding="utf-8")
    assert 'host = "127.0.0.1"' in text
    assert "change-me" not in text.replace('"change-me" are refused', "")


# -- passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["change-me", "CHANGEME", "Secret", "short-pass1"])
def test_placeholder_and_short_broker_passwords_are_refused(tmp_path: Path, password: str) -> None:
    config = hub_config(tmp_path, f'[mqtt]\nusername = "hub"\npassword = "{password}"\n')
    result = run("check-config", str(config))
    assert result.exit_code == 2
    assert f"{config}: [mqtt] password: " in result.stderr
    assert password not in result.stderr  # never repeated
    # ...and `broker config` does not make the hub's account with it.
    broker = run("--config", str(config), "broker", "config")
    assert broker.exit_code == 2
    assert not (tmp_path / "mosquitto").exists()


def test_a_long_random_password_passes(tmp_path: Path) -> None:
    config = hub_config(tmp_path, '[mqtt]\nusername = "hub"\npassword = "Zq8-r2Lw_0pXv7Ts"\n')
    assert run("check-config", str(config)).exit_code == 0


# -- file modes ------------------------------------------------------------------------------


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The process's umask lets everybody read and write new files."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("lax_umask")
def test_the_hubs_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "hub.sqlite3"
    with Store(sqlite_url(path)) as store:
        store.upgrade()
        with store.transaction() as conn:
            conn.execute(text("SELECT 1"))
        made = [path, path.with_name("hub.sqlite3-wal"), path.with_name("hub.sqlite3-shm")]
        assert all(p.exists() for p in made)
        assert {p.name: mode(p) for p in made} == {p.name: 0o600 for p in made}
    assert mode(path.parent) == 0o700


@pytest.mark.usefixtures("lax_umask")
def test_an_outbox_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.sqlite3"
    with Outbox(path) as box:
        box.put("office/counter/1/cmd", CounterCommand(msg_id="m1", action="next"))
        for made in path.parent.glob("outbox.sqlite3*"):
            assert mode(made) == 0o600, made.name


# -- the host of ticket links -------------------------------------------------------------------


def test_ticket_links_ignore_x_forwarded_host(tmp_path: Path) -> None:
    settings = Settings(
        role="hub",
        data={"dir": tmp_path / "hub"},  # type: ignore[arg-type]
        web=WebSettings(
            host="127.0.0.1",
            secure_cookies=False,
            proxy_hops=1,
            allowed_hosts=("portal.example.sk",),
        ),
    )
    queue = open_queue(settings)
    seed_demo(queue)
    try:
        client = web_app(settings, queue, config={"TESTING": True}).test_client()
        forged = client.post(
            "/api/v1/tickets",
            json={"service": "taxes"},
            headers={"Host": "portal.example.sk", "X-Forwarded-Host": "evil.example"},
        )
        assert forged.status_code == 201, forged.get_data(as_text=True)
        assert forged.get_json()["url"].startswith("http://portal.example.sk/t/")
        other = client.post(
            "/api/v1/tickets", json={"service": "taxes"}, headers={"Host": "evil.example"}
        )
        assert other.status_code == 400
        for page in ["/", "/admin/login", "/healthz"]:
            assert client.get(page, headers={"Host": "evil.example"}).status_code == 400
            assert client.get(page, headers={"Host": "portal.example.sk"}).status_code == 200
            assert client.get(page, headers={"Host": "127.0.0.1:8080"}).status_code == 200
    finally:
        queue.store.close()
