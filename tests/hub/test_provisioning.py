"""Pairing new devices with the hub, end to end: a real Mosquitto configured by the hub,
the hub running on it, devices that show a code, and the admin's `device pair`."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from office_helpers import require_mosquitto
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import SecretStr
from web_helpers import ADMIN_PASSWORD, csrf_token, visible_text

from common.settings import (
    BrokerSettings,
    DataSettings,
    MqttSettings,
    Settings,
    SiteSettings,
    WebSettings,
    load_settings,
)
from hub.accounts import list_devices, provision_account, write_broker_config
from hub.app import open_queue, seed_demo, start_bridge, web_app
from hub.audit import AdminAudit, AuditFilter
from hub.broker import Mosquitto, acl_rules, free_port
from hub.provisioning import Paired, PairingError, normalize_code, pair_device
from hub.users import Users
from sync_agent.broker_accounts import PROVISION_PASSWORD
from sync_agent.link import DeviceLink
from sync_agent.protocol import IssueRequest, TicketReply, Topics
from sync_agent.provisioning import DevicePairing, PairingState, needs_pairing

SITE = "office"
WAIT_S = 15.0
NOT_AUTHORIZED = 0x87


@dataclass
class Office:
    """The hub's settings, its running broker (files from the hub) and the hub itself."""

    hub: Settings
    broker: Mosquitto
    root: Path

    def device_settings(self, name: str, role: str = "kiosk") -> Path:
        """A fresh device's settings file, as first boot writes it: no broker account."""
        path = self.root / f"{name}.toml"
        path.write_text(
            f'role = "{role}"\n[site]\nid = "{SITE}"\n'
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.hub.mqtt.port}\n'
            f'[device]\nid = "{name}"\n[data]\ndir = "{self.root / name}"\n'
        )
        return path


@pytest.fixture
def office() -> Iterator[Office]:
    # A directory the `mosquitto` user can reach: run as root, the broker drops to it
    # and reads its files as on the appliance (pytest's tmp_path is root's only).
    root = Path(tempfile.mkdtemp(prefix="poradovnik-pairing-"))
    root.chmod(0o755)
    port = free_port()
    hub = Settings(
        role="hub",
        site=SiteSettings(id=SITE),
        mqtt=MqttSettings(
            host="127.0.0.1",
            port=port,
            username="hub",
            password=SecretStr(secrets.token_urlsafe(16)),
        ),
        data=DataSettings(dir=root / "hub"),
        broker=BrokerSettings(dir=root / "broker", port=port, bind="127.0.0.1"),
    )
    files = write_broker_config(hub)
    require_mosquitto()
    broker = Mosquitto(files.config, port)
    broker.start()
    queue = open_queue(hub)
    seed_demo(queue)
    _, link = start_bridge(hub, queue)
    assert link.connection.subscribed.wait(WAIT_S)
    try:
        yield Office(hub, broker, root)
    finally:
        link.stop()
        queue.store.close()
        broker.stop()
        shutil.rmtree(root)


@pytest.fixture
def waiting(office: Office) -> Iterator[Callable[..., DevicePairing]]:
    """Start devices that wait to be paired, each in its own thread."""
    started: list[tuple[DevicePairing, threading.Event, threading.Thread]] = []

    def start(name: str, role: str = "kiosk") -> DevicePairing:
        path = office.device_settings(name, role)
        pairing = DevicePairing(load_settings(path, env={}), path, request_interval_s=0.2)
        stop = threading.Event()
        thread = threading.Thread(target=pairing.run, args=(stop,), daemon=True)
        thread.start()
        started.append((pairing, stop, thread))
        return pairing

    yield start
    for _, stop, thread in started:
        stop.set()
        thread.join(timeout=WAIT_S)


def pair(office: Office, pairing: DevicePairing, **kwargs: Any) -> Paired:
    kwargs.setdefault("role", pairing.settings.role)
    return pair_device(
        office.hub,
        pairing.code,
        reload=office.broker.reload,
        listen_s=WAIT_S,
        **kwargs,
    )


def connack(mqtt: MqttSettings) -> int:
    """The reason code the broker answers a login with."""
    answered = threading.Event()
    codes: list[int] = []

    def on_connect(_c: object, _u: object, _f: object, rc: paho.ReasonCode, _p: object) -> None:
        codes.append(rc.value)
        answered.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(
        mqtt.username, mqtt.password.get_secret_value() if mqtt.password else None
    )
    client.on_connect = on_connect
    client.connect(mqtt.host, mqtt.port)
    client.loop_start()
    try:
        assert answered.wait(WAIT_S), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def test_a_new_kiosk_is_paired_and_then_issues_tickets(
    office: Office, waiting: Callable[..., DevicePairing]
) -> None:
    pairing = waiting("kiosk-entrance")
    assert needs_pairing(pairing.settings)
    assert len(pairing.code) == 6
    assert pairing.code.isdigit()

    paired = pair(office, pairing)

    assert paired.online
    assert pairing.done.wait(WAIT_S)
    assert pairing.state is PairingState.PAIRED
    settings = load_settings(pairing.settings_file, env={})
    assert not needs_pairing(settings)
    assert settings.mqtt.username == "kiosk-entrance"
    assert settings.device.id == "kiosk-entrance"
    assert (pairing.settings_file.stat().st_mode & 0o777) == 0o600
    # The hub keeps only the hash of the password the device chose.
    [account] = list_devices(office.hub)
    assert account.role == "kiosk"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() not in account.password_hash

    with DeviceLink(
        mqtt=settings.mqtt,
        site=SITE,
        device_id=settings.device.id,
        role="kiosk",
        outbox_path=None,
    ) as link:
        assert link.connected.wait(WAIT_S)
        topic = Topics(SITE).kiosk_issue(settings.device.id)
        reply = link.request(topic, IssueRequest(msg_id="t1", service="taxes"), timeout_s=WAIT_S)
    assert isinstance(reply, TicketReply)


def test_a_replacement_takes_the_broken_devices_id_and_locks_it_out(
    office: Office, waiting: Callable[..., DevicePairing]
) -> None:
    old = waiting("panel-a", role="counter")
    pair(office, old, counters=("1", "2"))
    assert old.done.wait(WAIT_S)
    old_mqtt = load_settings(old.settings_file, env={}).mqtt
    assert connack(old_mqtt) == 0

    new = waiting("spare-7", role="counter")
    paired = pair(office, new, counters=("1", "2"), device_id="panel-a")

    assert paired.online
    assert new.done.wait(WAIT_S)
    assert new.reply is not None
    assert new.reply.counters == ["1", "2"]
    new_settings = load_settings(new.settings_file, env={})
    assert new_settings.device.id == "panel-a"
    assert [a.username for a in list_devices(office.hub)] == ["panel-a"]
    assert connack(new_settings.mqtt) == 0
    assert connack(old_mqtt) == NOT_AUTHORIZED


def test_pairing_refuses_a_wrong_role_and_pairs_nothing(
    office: Office, waiting: Callable[..., DevicePairing]
) -> None:
    pairing = waiting("lobby-tv", role="display")
    with pytest.raises(PairingError, match="set up as a display"):
        pair(office, pairing, role="kiosk")
    assert list_devices(office.hub) == []
    assert not pairing.done.is_set()


def test_pairing_refuses_a_code_nobody_shows(office: Office) -> None:
    with pytest.raises(PairingError, match="no device asks to be paired with code 123456"):
        pair_device(office.hub, "123 456", role="kiosk", listen_s=0.5)


def test_pairing_refuses_a_code_two_devices_show(
    office: Office, waiting: Callable[..., DevicePairing]
) -> None:
    first = waiting("kiosk-a")
    second_path = office.device_settings("kiosk-b")
    second = DevicePairing(load_settings(second_path, env={}), second_path, code=first.code)
    stop = threading.Event()
    thread = threading.Thread(target=second.run, args=(stop,), daemon=True)
    thread.start()
    try:
        with pytest.raises(PairingError, match="two devices ask with code"):
            pair(office, first)
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert list_devices(office.hub) == []


@pytest.mark.parametrize("code", ["12345", "1234567", "abc def", ""])
def test_a_code_is_six_digits(code: str) -> None:
    with pytest.raises(PairingError, match="not a pairing code"):
        normalize_code(code)
    assert normalize_code(" 483-127 ") == "483127"


def test_the_provision_account_may_only_ask_and_read_answers(office: Office) -> None:
    rules = acl_rules(SITE, provision_account())
    base = f"poradovnik/v1/{SITE}/provision"
    assert rules == [("write", f"{base}/+/request"), ("read", f"{base}/+/reply")]
    provision = office.hub.mqtt.model_copy(
        update={"username": "provision", "password": SecretStr(PROVISION_PASSWORD)}
    )
    assert connack(provision) == 0


def reload_on_change(office: Office, stop: threading.Event) -> None:
    """What poradovnik-broker-reload.path does on the appliance: reload on a new config."""
    config = office.hub.broker.dir / "mosquitto.conf"
    seen = config.stat().st_mtime_ns
    while not stop.wait(0.05):
        changed = config.stat().st_mtime_ns
        if changed != seen:
            seen = changed
            office.broker.reload()


def test_the_admin_pairs_a_device_on_the_devices_page(
    office: Office, waiting: Callable[..., DevicePairing]
) -> None:
    pairing = waiting("display-hall", "display")
    settings = office.hub.model_copy(
        update={"web": WebSettings(host="127.0.0.1", secure_cookies=False)}
    )
    queue = open_queue(settings)  # the running hub's database
    stop = threading.Event()
    watcher = threading.Thread(target=reload_on_change, args=(office, stop), daemon=True)
    watcher.start()
    try:
        client = web_app(settings, queue, config={"TESTING": True}).test_client()
        client.set_cookie("lang", "en")  # the English wording
        Users(queue.store).add("admin", ADMIN_PASSWORD, "admin")
        client.post(
            "/admin/login",
            data={
                "username": "admin",
                "password": ADMIN_PASSWORD,
                "csrf_token": csrf_token(client, "/admin/login"),
            },
        )
        # A refused code (here one too short, refused at once: a code nobody shows would
        # keep the hub listening for the device's requests) gives the form again.
        wrong = client.post(
            "/admin/devices",
            data={
                "code": "000 00",
                "role": "display",
                "csrf_token": csrf_token(client, "/admin/devices"),
            },
        )
        assert wrong.status_code == 200  # the form again, with the reason
        assert "This is not a pairing code: it has 6 digits" in visible_text(
            wrong.get_data(as_text=True)
        )
        answer = client.post(
            "/admin/devices",
            data={
                "code": pairing.code,
                "role": "display",
                "csrf_token": csrf_token(client, "/admin/devices"),
            },
        )
        assert answer.status_code == 302, answer.get_data(as_text=True)
        page = client.get("/admin/devices").get_data(as_text=True)
        assert "Paired display-hall as display; it is online." in page
        assert pairing.done.wait(WAIT_S)
        assert pairing.state is PairingState.PAIRED
        [account] = list_devices(office.hub)
        assert (account.username, account.role) == ("display-hall", "display")
        [entry], _ = AdminAudit(queue.store, queue.clock).find(AuditFilter(kind="device"))
        assert (entry.actor, entry.object_id, entry.action) == (
            "admin:admin",
            "display-hall",
            "pair",
        )
        assert "role: display" in entry.summary
    finally:
        stop.set()
        watcher.join(WAIT_S)
        queue.store.close()
