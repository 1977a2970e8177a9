"""The bridge from a branch's broker to the city's: two real Mosquittos, over TLS.

The branch's broker is configured as ``poradovnik broker config`` writes it with
``[uplink]`` set; the city's is a plain one here (its own configuration is the city's
to write): a password file and an ACL that lets the branch's account write only its
own site and read the city's answers to it.
"""

from __future__ import annotations

import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from office_helpers import require_mosquitto
from pydantic import SecretStr
from test_broker import (
    CONFIG_PORT,
    SITE,
    SUCCESS,
    TEST_USER,
    Peer,
    certificate,  # noqa: F401 (a fixture)
    marker,
    office_accounts,
)
from uplink_helpers import WAIT_S, assert_copy_complete, issue, log_ids, start_acker, wait_acked

from common.settings import (
    BrokerSettings,
    DataSettings,
    MqttSettings,
    Settings,
    SiteSettings,
    UplinkSettings,
)
from hub.accounts import city_bridge, write_broker_config
from hub.app import open_queue, seed_demo, start_uplink
from hub.broker import (
    Bridge,
    BrokerFiles,
    Mosquitto,
    TlsListener,
    free_port,
    render_bridge,
    render_config,
    write_broker_files,
)
from sync_agent.broker_accounts import hash_password, new_password
from sync_agent.city_protocol import BRIDGED_IN, BRIDGED_OUT, CityTopics
from sync_agent.protocol import Topics

T = Topics(SITE)
C = CityTopics(SITE)
BRANCH_USER = f"branch-{SITE}"


@dataclass
class City:
    """The city's broker, with the branch's account and the city's own."""

    broker: Mosquitto
    passwords: dict[str, str]
    tls_port: int
    cafile: Path

    def login(self, username: str) -> Peer:
        peer = Peer(self.broker.port, username, self.passwords[username])
        rc, _ = peer.connect()
        assert rc.value == SUCCESS, f"{username}: {rc}; city broker log: {self.broker.tail()}"
        return peer


@dataclass
class Branch:
    broker: Mosquitto
    files: BrokerFiles
    passwords: dict[str, str]

    def login(self, username: str) -> Peer:
        peer = Peer(self.broker.port, username, self.passwords[username])
        rc, _ = peer.connect()
        assert rc.value == SUCCESS, f"{username}: {rc}; branch broker log: {self.broker.tail()}"
        return peer


def city_acl() -> str:
    """A branch writes its own site's topics and reads the city's answers; the city all."""
    return "\n".join(
        [
            f"user {BRANCH_USER}",
            f"topic write {T.base}/#",
            f"topic read {C.ack}",
            f"topic read {C.catalogue}",
            "user city",
            "topic readwrite poradovnik/v1/#",
            "",
        ]
    )


@pytest.fixture
def city(tmp_path: Path, certificate: tuple[Path, Path]) -> Iterator[City]:  # noqa: F811
    require_mosquitto()
    cert, key = certificate
    directory = tmp_path / "city"
    (directory / "data").mkdir(parents=True)
    passwords = {BRANCH_USER: new_password(), "city": new_password()}
    password_file, acl_file = directory / "passwd", directory / "acl"
    password_file.write_text("".join(f"{u}:{hash_password(p)}\n" for u, p in passwords.items()))
    acl_file.write_text(city_acl())
    port, tls_port = free_port(), free_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        render_config(
            port=port,
            data_dir=directory / "data",
            password_file=password_file,
            acl_file=acl_file,
            tls=TlsListener(tls_port, cert, key, bind="127.0.0.1"),
            user=TEST_USER,
        )
    )
    broker = Mosquitto(config, port)
    broker.start()
    yield City(broker, passwords, tls_port, cert)
    broker.stop()


@pytest.fixture
def branch(tmp_path: Path, city: City) -> Iterator[Branch]:
    accounts, passwords = office_accounts()
    port = free_port()
    bridge = Bridge(
        site=SITE,
        host="127.0.0.1",
        port=city.tls_port,
        username=BRANCH_USER,
        password=SecretStr(city.passwords[BRANCH_USER]),
        cafile=city.cafile,
    )
    files = write_broker_files(
        tmp_path / "branch", site=SITE, accounts=accounts, port=port, user=TEST_USER, bridge=bridge
    )
    broker = Mosquitto(files.config, port)
    broker.start()
    yield Branch(broker, files, passwords)
    broker.stop()


def bridge_up(branch: Branch) -> None:
    """Wait until the bridge says, on the branch's broker, that it is connected."""
    watcher = branch.login("hub")
    watcher.subscribe(f"{C.base}/city/bridge")
    while watcher.receive().payload != b"1":
        pass
    watcher.close()


def test_the_bridge_section_names_the_site_topics_and_tls(tmp_path: Path) -> None:
    secret = "a-long-bridge-password"
    bridge = Bridge(
        site=SITE,
        host="city.example.sk",
        port=8883,
        username=BRANCH_USER,
        password=SecretStr(secret),
        cafile=tmp_path / "ca.pem",
    )
    text = render_bridge(bridge)
    lines = text.splitlines()
    assert "connection city" in lines
    assert "address city.example.sk:8883" in lines
    assert f"remote_clientid poradovnik-bridge-{SITE}" in lines
    assert f"remote_password {secret}" in lines
    assert "cleansession false" in lines
    # Back promptly after a WAN cut, without hammering the city: 2 s growing to 30 s.
    assert "restart_timeout 2 30" in lines
    assert "bridge_insecure false" in lines
    assert f"bridge_cafile {tmp_path / 'ca.pem'}" in lines
    for pattern in BRIDGED_OUT:
        assert f"topic {pattern} out 1 {T.base}/ {T.base}/" in lines
    for pattern in BRIDGED_IN:
        assert f"topic {pattern} in 1 {T.base}/ {T.base}/" in lines
    assert "bridge_capath /etc/ssl/certs" in render_bridge(
        Bridge(SITE, "city.example.sk", 8883, BRANCH_USER, SecretStr(secret))
    )
    plain = render_bridge(
        Bridge(SITE, "city.example.sk", 1883, BRANCH_USER, SecretStr(secret), tls=False)
    )
    assert "bridge_" not in plain.replace("bridge_protocol_version", "")
    config = render_config(
        port=CONFIG_PORT,
        data_dir=tmp_path,
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        bridge=bridge,
    )
    assert config.endswith(text)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"site": "a/b"}, "topic level"),
        ({"port": 0}, "out of range"),
        ({"host": "city\nconnection evil"}, "cannot be written"),
        ({"password": SecretStr("pass\nword")}, "cannot be written"),
        ({"certfile": Path("/c.pem")}, "go together"),
        ({"tls": False, "cafile": Path("/ca.pem")}, "need TLS"),
    ],
)
def test_a_bridge_refuses_what_mosquitto_cannot_take(
    changes: dict[str, object], problem: str
) -> None:
    values: dict[str, object] = {
        "site": SITE,
        "host": "city.example.sk",
        "port": 8883,
        "username": BRANCH_USER,
        "password": SecretStr("a-long-bridge-password"),
        **changes,
    }
    with pytest.raises(ValueError, match=problem):
        render_bridge(Bridge(**values))  # type: ignore[arg-type]


def test_with_a_bridge_the_configuration_is_not_readable_by_others(tmp_path: Path) -> None:
    accounts, _ = office_accounts()
    bridge = Bridge(SITE, "city.example.sk", 8883, BRANCH_USER, SecretStr("a-long-password"))
    files = write_broker_files(
        tmp_path, site=SITE, accounts=accounts, port=CONFIG_PORT, bridge=bridge
    )
    assert "a-long-password" in files.config.read_text()
    assert stat.S_IMODE(files.config.stat().st_mode) == 0o600


def test_retained_queue_state_reaches_the_city_retained(city: City, branch: Branch) -> None:
    bridge_up(branch)
    watcher = city.login("city")
    watcher.subscribe(C.history)
    hub = branch.login("hub")
    state = f"queue state {uuid.uuid4()}".encode()
    assert hub.publish(T.queue("taxes"), state, retain=True) == SUCCESS
    history = marker()
    assert hub.publish(C.history, history) == SUCCESS
    assert watcher.receive().payload == history
    # The state went before it; subscribing now, the city gets it as retained.
    watcher.subscribe(T.queue("taxes"))
    message = watcher.receive()
    assert (message.topic, message.payload, message.retain) == (T.queue("taxes"), state, True)


def test_the_citys_ack_reaches_the_branch_and_nothing_unbridged_crosses(
    city: City, branch: Branch
) -> None:
    bridge_up(branch)
    local = branch.login("hub")
    local.subscribe(f"{T.base}/#")
    city_side = city.login("city")
    city_side.subscribe("poradovnik/v1/#")
    # From the city: the ack crosses; a topic the bridge does not carry does not.
    ack = f"ack {uuid.uuid4()}".encode()
    assert city_side.publish(C.ack, ack, retain=True) == SUCCESS
    local.until(ack)
    stray = f"stray {uuid.uuid4()}".encode()
    assert city_side.publish(f"{T.base}/counter/1/cmd", stray) == SUCCESS
    catalogue = f"catalogue {uuid.uuid4()}".encode()
    assert city_side.publish(C.catalogue, catalogue, retain=True) == SUCCESS
    assert stray not in [m.payload for m in local.until(catalogue)]
    # From the branch: a counter's command stays in the office; its state crosses.
    command = f"command {uuid.uuid4()}".encode()
    assert local.publish(T.counter_cmd("1"), command) == SUCCESS
    counter = f"counter state {uuid.uuid4()}".encode()
    assert local.publish(T.counter_state("1"), counter, retain=True) == SUCCESS
    assert command not in [m.payload for m in city_side.until(counter)]


def test_broker_config_bridges_to_the_city_when_uplink_is_set(tmp_path: Path) -> None:
    password = new_password()
    settings = Settings(
        role="hub",
        site=SiteSettings(id=SITE),
        mqtt=MqttSettings(username="hub", password=SecretStr(new_password())),
        data=DataSettings(dir=tmp_path / "data"),
        broker=BrokerSettings(dir=tmp_path / "mosquitto", run_as=None),
        uplink=UplinkSettings(
            host="city.example.sk", username=BRANCH_USER, password=SecretStr(password)
        ),
    )
    files = write_broker_config(settings)
    text = files.config.read_text()
    assert f"remote_password {password}" in text
    assert "address city.example.sk:8883" in text
    assert stat.S_IMODE(files.config.stat().st_mode) == 0o600
    # Without [uplink] there is no bridge.
    files = write_broker_config(settings.model_copy(update={"uplink": UplinkSettings()}))
    assert "connection city" not in files.config.read_text()


def test_the_hubs_log_reaches_the_city_through_the_bridge_across_a_cut(
    tmp_path: Path, city: City
) -> None:
    """The branch as it runs: broker files from [uplink], the hub's uplink, a city acker."""
    accounts, passwords = office_accounts()
    port = free_port()
    settings = Settings(
        role="hub",
        site=SiteSettings(id=SITE),
        mqtt=MqttSettings(
            host="127.0.0.1", port=port, username="hub", password=SecretStr(passwords["hub"])
        ),
        data=DataSettings(dir=tmp_path / "hub"),
        uplink=UplinkSettings(
            host="127.0.0.1",
            port=city.tls_port,
            username=BRANCH_USER,
            password=SecretStr(city.passwords[BRANCH_USER]),
            cafile=city.cafile,
        ),
    )
    files = write_broker_files(
        tmp_path / "branch",
        site=SITE,
        accounts=accounts,
        port=port,
        user=TEST_USER,
        bridge=city_bridge(settings),
    )
    branch = Mosquitto(files.config, port)
    branch.start()
    city_login = MqttSettings(
        host="127.0.0.1",
        port=city.broker.port,
        username="city",
        password=SecretStr(city.passwords["city"]),
    )
    acker = start_acker(city_login, SITE)
    queue = open_queue(settings)
    seed_demo(queue)
    uplink = start_uplink(settings, queue)
    assert uplink is not None
    try:
        issue(queue, 150)
        acker.wait_for(lambda a: a.progress == log_ids(queue)[-1], "the log at the city")
        wait_acked(uplink, log_ids(queue)[-1])
        # The WAN is cut (the city's broker away), the office goes on, the WAN comes back.
        city.broker.stop()
        with uplink.idle:
            assert uplink.idle.wait_for(lambda: not uplink.bridge_up, WAIT_S), "bridge still up"
        sent = uplink.sent
        issue(queue, 30)
        with uplink.idle:  # a round after the new rows: nothing goes into the bridge's queue
            uplink.idle.wait(WAIT_S)
        assert uplink.sent == sent
        city.broker.start()
        acker.wait_for(lambda a: a.progress == log_ids(queue)[-1], "the log after the cut")
        wait_acked(uplink, log_ids(queue)[-1])
        assert_copy_complete(acker, queue)
    finally:
        uplink.stop()
        acker.connection.stop()
        queue.store.close()
        branch.stop()
