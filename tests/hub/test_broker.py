"""The hub's Mosquitto files: password hashes, per-role ACLs and the configuration.

The files are checked on their own, and then against a real Mosquitto (the Debian
package ``mosquitto``) on a free port: what each role may publish and receive is
proven with paho-mqtt clients (MQTT v5). Every wait has a timeout; nothing sleeps.
"""

from __future__ import annotations

import base64
import os
import pwd
import queue
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from office_helpers import require_mosquitto
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hub.broker import (
    MAX_PACKET_BYTES,
    BrokerError,
    BrokerFiles,
    Mosquitto,
    TlsListener,
    free_port,
    render_acl,
    render_config,
    render_password_file,
    write_broker_files,
)
from sync_agent.broker_accounts import (
    Account,
    hash_password,
    new_account,
    new_password,
    verify_password,
)
from sync_agent.protocol import MAX_PAYLOAD_BYTES, Topics

WAIT_S = 10.0  # an upper bound for waiting, never a pause
SITE = "kosice-centrum"
T = Topics(SITE)
SUCCESS = 0
NO_SUBSCRIBERS = 0x10  # PUBACK: accepted, but nobody subscribes to it
NOT_AUTHORIZED = 0x87  # MQTT v5 reason code 135, in CONNACK and PUBACK
PACKET_TOO_LARGE = 0x95  # DISCONNECT from the broker
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# Tests run as root keep their files where the mosquitto user cannot read them.
TEST_USER = "root" if IS_ROOT else None


# -- MQTT clients for the tests ------------------------------------------------------


class Peer:
    """A paho-mqtt v5 client on its own network thread, with blocking, bounded waits."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        tls_ca: Path | None = None,
    ) -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{username or 'anonymous'}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connack: queue.Queue[tuple[ReasonCode, Any]] = queue.Queue()
        self.disconnected: queue.Queue[ReasonCode] = queue.Queue()
        self._acks: dict[int, Any] = {}
        self._acked = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, message: self.messages.put(message)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self._ack(mid, rc)
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self._ack(mid, rcs)

    def _on_connect(
        self, client: mqtt.Client, _u: Any, flags: Any, rc: ReasonCode, _p: Any
    ) -> None:
        if rc.is_failure:
            client.disconnect()  # no reconnecting with refused credentials
        self.connack.put((rc, flags))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        self.disconnected.put(rc)

    def _ack(self, mid: int, result: Any) -> None:
        with self._acked:
            self._acks[mid] = result
            self._acked.notify_all()

    def _wait_ack(self, mid: int) -> Any:
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self._acks, WAIT_S), f"no ack for {mid}"
            return self._acks.pop(mid)

    def connect(self, *, clean_start: bool = True, session_expiry: int | None = None) -> Any:
        """Connect and wait for CONNACK; return its reason code and flags."""
        properties = None
        if session_expiry is not None:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = session_expiry
        self.client.connect("127.0.0.1", self.port, clean_start=clean_start, properties=properties)
        self.client.loop_start()
        result = self.connack.get(timeout=WAIT_S)
        if result[0].is_failure:
            self.client.loop_stop()
        return result

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish at QoS 1 and return the reason code of the broker's PUBACK."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        rc: ReasonCode = self._wait_ack(info.mid)
        return rc.value

    def subscribe(self, *topics: str) -> list[int]:
        """Subscribe at QoS 1 and return the SUBACK's reason codes."""
        _, mid = self.client.subscribe([(topic, 1) for topic in topics])
        assert mid is not None
        return [rc.value for rc in self._wait_ack(mid)]

    def receive(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=WAIT_S)

    def until(self, payload: bytes) -> list[mqtt.MQTTMessage]:
        """Every message up to the one with ``payload`` (which must come): what came before."""
        before = []
        while (message := self.receive()).payload != payload:
            before.append(message)
        return before

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


CONFIG_PORT = 11883
"""The port written into rendered configuration text; these tests start no broker."""


def marker() -> bytes:
    return f"marker {uuid.uuid4()}".encode()


# -- an office: accounts, files and the broker ---------------------------------------


@dataclass
class Office:
    """A running broker with one account of every role, and clients to log in with."""

    broker: Mosquitto
    files: BrokerFiles
    passwords: dict[str, str]
    accounts: list[Account]
    peers: list[Peer] = field(default_factory=list)
    tls_ca: Path | None = None
    """With a TLS listener: the CA to check it with (every client then uses TLS)."""

    def peer(self, username: str | None, password: str | None = None, **kwargs: Any) -> Peer:
        kwargs.setdefault("tls_ca", self.tls_ca)
        if password is None and username is not None:
            password = self.passwords[username]
        peer = Peer(self.broker.port, username, password, **kwargs)
        self.peers.append(peer)
        return peer

    def login(self, username: str, password: str | None = None, **kwargs: Any) -> Peer:
        peer = self.peer(username, password, **kwargs)
        rc, _ = peer.connect()
        assert rc.value == SUCCESS, f"{username}: {rc}; broker log: {self.broker.tail()}"
        return peer


def office_accounts() -> tuple[list[Account], dict[str, str]]:
    specs: list[tuple[str, Any, str | None, tuple[str, ...]]] = [
        ("hub", "hub", "hub", ()),
        ("kiosk-1", "kiosk", "kiosk-1", ()),
        ("kiosk-2", "kiosk", "kiosk-2", ()),
        ("lobby", "display", "lobby", ()),
        ("panel-a", "counter", "panel-a", ("1", "2")),
        ("panel-b", "counter", "panel-b", ("3",)),
        ("imesto", "backoffice", None, ()),
    ]
    accounts, passwords = [], {}
    for username, role, device, counters in specs:
        account, password = new_account(username, role, device_id=device, counters=counters)
        accounts.append(account)
        passwords[username] = password
    return accounts, passwords


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    accounts, passwords = office_accounts()
    port = free_port()
    files = write_broker_files(
        tmp_path / "broker", site=SITE, accounts=accounts, port=port, user=TEST_USER
    )
    require_mosquitto()
    broker = Mosquitto(files.config, port)
    broker.start()
    office = Office(broker, files, passwords, accounts)
    yield office
    for peer in office.peers:
        peer.close()
    broker.stop()


@pytest.fixture
def watcher(office: Office) -> Peer:
    """The hub's credentials, subscribed to everything of the site."""
    peer = office.login("hub")
    assert peer.subscribe(T.all()) == [1]
    return peer


def assert_refused(sender: Peer, topic: str, office: Office, watcher: Peer) -> None:
    """``sender`` may not publish on ``topic``: the broker says so, and delivers nothing.

    Mosquitto answers an unauthorised QoS 1 publish with PUBACK 0x87 and drops it. To
    prove nothing reached the hub, a marker follows from the hub once the PUBACK came:
    the broker is one thread, so a delivered message would reach the watcher first.
    """
    payload = f"forbidden {uuid.uuid4()}".encode()
    assert sender.publish(topic, payload) == NOT_AUTHORIZED
    hub = office.login("hub")
    end = marker()
    assert hub.publish(f"{T.base}/test/marker", end) == SUCCESS
    assert payload not in [m.payload for m in watcher.until(end)]


def assert_allowed(sender: Peer, topic: str, watcher: Peer) -> None:
    payload = f"allowed {uuid.uuid4()}".encode()
    assert sender.publish(topic, payload) == SUCCESS
    message = watcher.receive()
    assert (message.topic, message.payload) == (topic, payload)


# -- passwords ------------------------------------------------------------------------


def test_hash_password_has_mosquitto_passwd_format() -> None:
    hashed = hash_password("secret")
    assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", hashed)
    assert hashed != hash_password("secret")  # a fresh salt each time
    assert verify_password("secret", hashed)
    assert not verify_password("Secret", hashed)


def test_hash_password_equals_mosquitto_passwd_for_the_same_salt(tmp_path: Path) -> None:
    tool = require_mosquitto("mosquitto_passwd")
    file = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(file), "user", "pässwörd-1"], check=True)
    line = file.read_text().strip()
    username, hashed = line.split(":", 1)
    salt = base64.b64decode(hashed.split("$")[3])
    assert username == "user"
    assert hash_password("pässwörd-1", salt=salt) == hashed


def test_hash_password_refuses_what_mosquitto_would_drop() -> None:
    with pytest.raises(ValueError, match="12 bytes"):
        hash_password("x", salt=b"short")
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_new_password_is_long_random_and_url_safe() -> None:
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert len(password) >= 24
        assert re.fullmatch(r"[A-Za-z0-9_-]+", password)


# -- accounts -------------------------------------------------------------------------

HASH = hash_password("x", salt=bytes(12))
# A well-formed PBKDF2 hash with a 16-byte salt: Mosquitto 2.0 would drop the entry.
SALT16 = "$7$101$" + base64.b64encode(bytes(16)).decode() + "$" + HASH.rsplit("$", 1)[1]


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"username": "a:b", "role": "hub"}, "user name"),
        ({"username": "k", "role": "kiosk"}, "needs a device id"),
        ({"username": "k", "role": "kiosk", "device_id": "a/b"}, "device id"),
        ({"username": "k", "role": "kiosk", "device_id": "k", "counters": ("1",)}, "only a"),
        ({"username": "c", "role": "counter", "device_id": "c"}, "needs its counters"),
        ({"username": "c", "role": "counter", "device_id": "c", "counters": ("+",)}, "counter"),
        ({"username": "c", "role": "counter", "device_id": "c", "counters": ("1", "1")}, "twice"),
        ({"username": "b", "role": "backoffice", "device_id": "b"}, "no device id"),
        ({"username": "x", "role": "admin"}, "unknown role"),
        ({"username": "x", "role": "hub", "password_hash": "plain"}, "not a Mosquitto hash"),
        ({"username": "x", "role": "hub", "password_hash": SALT16}, "not a Mosquitto hash"),
    ],
)
def test_account_refuses_what_does_not_fit(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Account(**{"password_hash": HASH, **kwargs})


def test_account_repr_hides_the_hash() -> None:
    account = Account("hub", "hub", password_hash=HASH)
    assert HASH not in repr(account)


def test_accounts_may_not_share_user_names_or_device_topics() -> None:
    kiosk = Account("k1", "kiosk", device_id="k1", password_hash=HASH)
    with pytest.raises(ValueError, match="used twice"):
        render_acl(SITE, [kiosk, Account("k1", "display", device_id="d", password_hash=HASH)])
    with pytest.raises(ValueError, match="device topics"):
        render_acl(SITE, [kiosk, Account("k2", "display", device_id="k1", password_hash=HASH)])
    # A back-office system's reply topic is named after its user name.
    backoffice = Account("k1", "backoffice", password_hash=HASH)
    with pytest.raises(ValueError, match="device topics"):
        render_password_file([backoffice, _kiosk("kiosk-a", "k1")])


def _kiosk(username: str, device: str) -> Account:
    return Account(username, "kiosk", device_id=device, password_hash=HASH)


# -- the rendered files ---------------------------------------------------------------


def test_acl_is_per_user_stable_and_generated() -> None:
    accounts, _ = office_accounts()
    acl = render_acl(SITE, accounts)
    assert acl == render_acl(SITE, reversed(accounts))
    assert acl.startswith("# ")
    assert "generated by hub.broker" in acl.lower()
    assert "pattern" not in acl
    # Rules come only after a user line: nothing applies to anonymous clients.
    rules = [line for line in acl.splitlines() if line and not line.startswith("#")]
    assert rules[0] == "user hub"
    assert [line.split()[1] for line in rules if line.startswith("user ")] == [
        "hub", "kiosk-1", "kiosk-2", "lobby", "panel-a", "panel-b", "imesto",
    ]  # fmt: skip
    block = acl.split("user panel-a\n")[1].split("\n\n")[0].splitlines()
    assert block == [
        f"topic write {T.device_status('panel-a')}",
        f"topic write {T.device_health('panel-a')}",
        f"topic read {T.device_reply('panel-a')}",
        f"topic read {T.device_status('hub')}",
        f"topic write {T.counter_cmd('1')}",
        f"topic write {T.counter_cmd('2')}",
        f"topic write {T.counter_rating('1')}",
        f"topic write {T.counter_rating('2')}",
        f"topic read {T.counter_state('1')}",
        f"topic read {T.counter_state('2')}",
        f"topic read {T.base}/queue/#",
        f"topic read {T.calls()}",
    ]


def test_password_file_lists_every_account() -> None:
    accounts, _ = office_accounts()
    lines = [line for line in render_password_file(accounts).splitlines() if line[:1] != "#"]
    assert lines == [f"{a.username}:{a.password_hash}" for a in _sorted_like_acl(accounts)]


def _sorted_like_acl(accounts: list[Account]) -> list[Account]:
    order = ["hub", "kiosk", "display", "counter", "backoffice"]
    return sorted(accounts, key=lambda a: (order.index(a.role), a.username))


def test_config_has_the_security_and_limits(tmp_path: Path) -> None:
    conf = render_config(
        port=CONFIG_PORT,
        data_dir=tmp_path / "data",
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        tls=TlsListener(8883, tmp_path / "cert.pem", tmp_path / "key.pem"),
    )
    lines = conf.splitlines()
    assert lines.index("per_listener_settings false") < lines.index(
        f"listener {CONFIG_PORT} 127.0.0.1"
    )
    for line in [
        "allow_anonymous false",
        f"password_file {tmp_path / 'passwd'}",
        f"acl_file {tmp_path / 'acl'}",
        "persistence true",
        f"persistence_location {tmp_path / 'data'}/",
        "log_dest stderr",
        "listener 8883",
        f"certfile {tmp_path / 'cert.pem'}",
        f"keyfile {tmp_path / 'key.pem'}",
    ]:
        assert line in lines
    assert "pid_file" not in conf
    assert "log_dest file" not in conf
    assert "user " not in conf  # Mosquitto's default: drop root for "mosquitto"
    size = int(next(x for x in lines if x.startswith("max_packet_size")).split()[1])
    assert MAX_PAYLOAD_BYTES * 2 <= size <= 1024 * 1024
    assert "cafile" not in conf
    without = render_config(
        port=1, data_dir=tmp_path, password_file=tmp_path, acl_file=tmp_path, persistence=False
    )
    assert "persistence false" in without
    assert "persistence_location" not in without


def test_config_refuses_values_mosquitto_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        render_config(
            port=CONFIG_PORT,
            data_dir=tmp_path,
            password_file=Path("a\nb"),
            acl_file=tmp_path / "acl",
        )
    with pytest.raises(ValueError, match="out of range"):
        render_config(port=0, data_dir=tmp_path, password_file=tmp_path, acl_file=tmp_path)
    with pytest.raises(ValueError, match="cafile"):
        TlsListener(8883, tmp_path, tmp_path, require_certificate=True)


def test_write_broker_files_writes_atomically_with_tight_modes(tmp_path: Path) -> None:
    accounts, _ = office_accounts()
    directory = tmp_path / "etc"
    files = write_broker_files(directory, site=SITE, accounts=accounts, port=CONFIG_PORT)
    assert files.config.read_text().count("\n") > 10
    assert files.acl_file.read_text() == render_acl(SITE, accounts)
    assert files.password_file.read_text() == render_password_file(accounts)
    assert stat.S_IMODE(files.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.acl_file.stat().st_mode) == 0o640
    assert stat.S_IMODE(files.config.stat().st_mode) == 0o640
    assert files.data_dir == directory / "data"
    assert files.data_dir.is_dir()
    # Written again over the old files, nothing else is left behind.
    write_broker_files(directory, site=SITE, accounts=accounts[:2], port=CONFIG_PORT)
    assert sorted(p.name for p in directory.iterdir()) == [
        "acl",
        "data",
        "mosquitto.conf",
        "passwd",
    ]
    assert "kiosk-2" not in files.password_file.read_text()


def test_write_broker_files_writes_nothing_for_bad_accounts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="used twice"):
        write_broker_files(tmp_path, site=SITE, accounts=[_kiosk("a", "a")] * 2, port=CONFIG_PORT)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not IS_ROOT, reason="only root can give files to another user")
def test_write_broker_files_chowns_to_the_broker_user(tmp_path: Path) -> None:
    user = pwd.getpwnam(_broker_user())
    files = write_broker_files(
        tmp_path, site=SITE, accounts=office_accounts()[0], port=CONFIG_PORT, chown_to=user.pw_name
    )
    for path in (files.password_file, files.acl_file, files.data_dir):
        assert (path.stat().st_uid, path.stat().st_gid) == (user.pw_uid, user.pw_gid)
    assert files.config.stat().st_uid == 0  # the broker's user cannot change its config


def test_write_broker_files_refuses_an_unknown_owner(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="no user"):
        write_broker_files(
            tmp_path, site=SITE, accounts=[], port=CONFIG_PORT, chown_to="no-such-user-poradovnik"
        )


def _broker_user() -> str:
    require_mosquitto()  # its Debian package makes the user
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        pytest.skip("no 'mosquitto' user here")
    return "mosquitto"


# -- a real Mosquitto: who may log in --------------------------------------------------


def test_real_mosquitto_accepts_a_password_hashed_here(office: Office) -> None:
    rc, _ = office.peer("kiosk-1").connect()
    assert rc.value == SUCCESS


def test_anonymous_is_refused(office: Office) -> None:
    rc, _ = office.peer(None).connect()
    assert rc.value == NOT_AUTHORIZED


@pytest.mark.parametrize("username", ["hub", "kiosk-1", "nobody"])
def test_a_wrong_password_is_refused(office: Office, username: str) -> None:
    rc, _ = office.peer(username, "wrong-" + new_password()).connect()
    assert rc.value == NOT_AUTHORIZED


def test_someone_elses_password_is_refused(office: Office) -> None:
    rc, _ = office.peer("hub", office.passwords["lobby"]).connect()
    assert rc.value == NOT_AUTHORIZED


# -- a real Mosquitto: what each role may do -------------------------------------------

EVERY_TOPIC = [
    T.kiosk_issue("kiosk-1"),
    T.counter_cmd("1"),
    T.counter_state("1"),
    T.calls(),
    T.queue("A"),
    T.device_status("lobby"),
    T.device_health("kiosk-2"),
    T.device_reply("panel-a"),
    T.eservice_update(),
]


def test_hub_reads_and_writes_everything_of_its_site(office: Office, watcher: Peer) -> None:
    hub = office.login("hub")
    for topic in EVERY_TOPIC:
        assert_allowed(hub, topic, watcher)
    # ... and what the devices send.
    assert_allowed(office.login("kiosk-1"), T.kiosk_issue("kiosk-1"), watcher)
    assert_allowed(office.login("panel-a"), T.counter_cmd("2"), watcher)
    # Not another site's.
    assert_refused(hub, Topics("other-site").calls(), office, watcher)


@pytest.mark.parametrize(
    "topic",
    [
        T.kiosk_issue("kiosk-1"),
        T.kiosk_issue("lobby"),
        T.counter_cmd("1"),
        T.counter_rating("1"),
        T.calls(),
        T.queue("A"),
        T.counter_state("1"),
        T.device_status("kiosk-1"),
        T.eservice_update(),
    ],
)
def test_display_cannot_publish_but_its_own_status(
    office: Office, watcher: Peer, topic: str
) -> None:
    display = office.login("lobby")
    assert_refused(display, topic, office, watcher)


def test_display_writes_its_own_status_and_health(office: Office, watcher: Peer) -> None:
    display = office.login("lobby")
    assert_allowed(display, T.device_status("lobby"), watcher)
    assert_allowed(display, T.device_health("lobby"), watcher)


def test_display_receives_only_what_it_may_read(office: Office) -> None:
    display = office.login("lobby")
    # Mosquitto grants the subscription and filters each message by the ACL's read rules.
    assert display.subscribe(T.all()) == [1]
    hub = office.login("hub")
    readable = [T.calls(), T.queue("A"), T.counter_state("3"), T.counter_call("3", "0")]
    readable += [T.device_reply("lobby")]
    hidden = [T.counter_cmd("1"), T.kiosk_issue("kiosk-1"), T.device_reply("kiosk-1")]
    hidden += [T.device_status("kiosk-1"), T.eservice_update()]
    for topic in hidden + readable:
        assert hub.publish(topic, topic.encode()) == SUCCESS
    end = marker()
    assert hub.publish(T.calls(), end) == SUCCESS
    assert [m.topic for m in display.until(end)] == readable


def test_counter_panel_acts_only_for_its_counters(office: Office, watcher: Peer) -> None:
    panel = office.login("panel-a")  # counters 1 and 2
    assert_allowed(panel, T.counter_cmd("1"), watcher)
    assert_allowed(panel, T.counter_cmd("2"), watcher)
    assert_allowed(panel, T.counter_rating("1"), watcher)
    for topic in [
        T.counter_cmd("3"),
        T.counter_rating("3"),
        T.counter_state("1"),
        T.calls(),
        T.kiosk_issue("panel-a"),
        T.device_status("panel-b"),
    ]:
        assert_refused(panel, topic, office, watcher)


def test_counter_panel_reads_its_counters_queues_and_calls(office: Office) -> None:
    panel = office.login("panel-a")
    assert panel.subscribe(f"{T.base}/counter/+/state", T.calls(), f"{T.base}/queue/#") == [1] * 3
    hub = office.login("hub")
    for topic in [T.counter_state("3"), T.counter_state("1"), T.queue("B"), T.calls()]:
        assert hub.publish(topic, topic.encode()) == SUCCESS
    end = marker()
    assert hub.publish(T.counter_state("2"), end) == SUCCESS
    assert [m.topic for m in panel.until(end)] == [T.counter_state("1"), T.queue("B"), T.calls()]


def test_kiosk_publishes_only_its_own_issue_topic(office: Office, watcher: Peer) -> None:
    kiosk = office.login("kiosk-1")
    assert_allowed(kiosk, T.kiosk_issue("kiosk-1"), watcher)
    assert_allowed(kiosk, T.device_status("kiosk-1"), watcher)
    for topic in [
        T.kiosk_issue("kiosk-2"),
        T.counter_cmd("1"),
        T.queue("A"),
        T.calls(),
        T.device_status("kiosk-2"),
        T.eservice_update(),
    ]:
        assert_refused(kiosk, topic, office, watcher)


def test_only_a_kiosk_publishes_check_ins_and_only_its_own(office: Office, watcher: Peer) -> None:
    assert_allowed(office.login("kiosk-1"), T.kiosk_checkin("kiosk-1"), watcher)
    assert_refused(office.login("kiosk-1"), T.kiosk_checkin("kiosk-2"), office, watcher)
    for username in ("lobby", "panel-a", "imesto"):
        account = office.login(username)
        assert_refused(account, T.kiosk_checkin(username), office, watcher)
        assert_refused(account, T.kiosk_checkin("kiosk-1"), office, watcher)


def test_only_a_counter_panel_sends_ratings_and_only_for_its_counters(
    office: Office, watcher: Peer
) -> None:
    assert_allowed(office.login("panel-a"), T.counter_rating("2"), watcher)
    assert_refused(office.login("panel-a"), T.counter_rating("3"), office, watcher)
    for username in ("kiosk-1", "lobby", "imesto"):
        assert_refused(office.login(username), T.counter_rating("1"), office, watcher)


def test_kiosk_reads_queues_and_only_its_own_replies(office: Office) -> None:
    kiosk = office.login("kiosk-1")
    assert kiosk.subscribe(f"{T.base}/device/+/reply", f"{T.base}/queue/#") == [1, 1]
    hub = office.login("hub")
    for topic in [T.device_reply("kiosk-2"), T.queue("A"), T.device_reply("kiosk-1")]:
        assert hub.publish(topic, topic.encode()) == SUCCESS
    end = marker()
    assert hub.publish(T.queue("Z"), end) == SUCCESS
    assert [m.topic for m in kiosk.until(end)] == [T.queue("A"), T.device_reply("kiosk-1")]


def test_backoffice_publishes_eservice_updates_only(office: Office, watcher: Peer) -> None:
    backoffice = office.login("imesto")
    assert_allowed(backoffice, T.eservice_update(), watcher)
    for topic in [
        T.kiosk_issue("kiosk-1"),
        T.counter_cmd("1"),
        T.calls(),
        T.queue("A"),
        T.device_status("imesto"),
    ]:
        assert_refused(backoffice, topic, office, watcher)
    assert backoffice.subscribe(f"{T.base}/device/+/reply") == [1]
    hub = office.login("hub")
    assert hub.publish(T.device_reply("kiosk-1"), b"not yours") == SUCCESS
    assert hub.publish(T.device_reply("imesto"), b"yours") == SUCCESS
    assert backoffice.receive().payload == b"yours"


# -- a real Mosquitto: last wills, persistence, limits, reload ------------------------


def _drop_connection(office: Office, username: str, will: str) -> None:
    """Connect as ``username`` with a last will on ``will``, then vanish without DISCONNECT."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5)
    client.username_pw_set(username, office.passwords[username])
    client.will_set(will, f"will of {username}".encode(), qos=1)
    connacks: list[ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, rc, _p: connacks.append(rc)
    client.connect("127.0.0.1", office.broker.port)
    while not connacks:
        assert client.loop(timeout=WAIT_S) == mqtt.MQTT_ERR_SUCCESS
    assert connacks[0].value == SUCCESS
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    sock.close()  # like a device losing power or network


def test_device_last_will_is_delivered(office: Office, watcher: Peer) -> None:
    _drop_connection(office, "lobby", T.device_status("lobby"))
    message = watcher.receive()
    assert (message.topic, message.payload) == (T.device_status("lobby"), b"will of lobby")


def test_a_last_will_on_another_devices_topic_is_dropped(office: Office, watcher: Peer) -> None:
    _drop_connection(office, "kiosk-1", T.device_status("lobby"))
    # The same client id again: once it is connected, the broker has ended the old
    # connection (and published or dropped its will); a marker on the new one follows.
    again = office.login("kiosk-1", client_id="kiosk-1")
    end = marker()
    assert again.publish(T.device_status("kiosk-1"), end) == SUCCESS
    assert [m.payload for m in watcher.until(end)] == []


def test_persistent_session_keeps_qos1_messages_across_a_restart(office: Office) -> None:
    panel = office.peer("panel-a", client_id="panel-a")
    rc, _ = panel.connect(clean_start=False, session_expiry=3600)
    assert rc.value == SUCCESS
    assert panel.subscribe(T.calls()) == [1]
    panel.close()
    hub = office.login("hub")
    assert hub.publish(T.calls(), b"A 42 -> 3") == SUCCESS
    assert hub.publish(T.queue("A"), b"retained", retain=True) == NO_SUBSCRIBERS

    office.broker.restart()

    panel = office.peer("panel-a", client_id="panel-a")
    rc, flags = panel.connect(clean_start=False, session_expiry=3600)
    assert rc.value == SUCCESS
    assert flags.session_present
    assert panel.receive().payload == b"A 42 -> 3"
    lobby = office.login("lobby")
    assert lobby.subscribe(T.queue("A")) == [1]
    message = lobby.receive()
    assert (message.payload, message.retain) == (b"retained", True)


def test_packets_above_the_limit_are_refused(office: Office, watcher: Peer) -> None:
    hub = office.login("hub")
    big = b"x" * MAX_PAYLOAD_BYTES
    assert_allowed(hub, T.queue("A"), watcher)
    assert hub.publish(T.queue("big"), big) == SUCCESS
    assert watcher.receive().payload == big
    # Too big for the broker: it cuts the client off and routes nothing.
    info = hub.client.publish(T.queue("huge"), b"x" * (MAX_PACKET_BYTES + 1), qos=1)
    assert info.rc == mqtt.MQTT_ERR_SUCCESS
    assert hub.disconnected.get(timeout=WAIT_S).value == PACKET_TOO_LARGE
    end = marker()
    assert office.login("hub").publish(T.calls(), end) == SUCCESS
    assert [m.topic for m in watcher.until(end)] == []


def test_sighup_rereads_accounts(office: Office, watcher: Peer) -> None:
    lobby = office.login("lobby")  # to be removed
    kiosk = office.login("kiosk-1")  # to get a new password
    panel = office.login("panel-a")  # unchanged
    newcomer, password = new_account("kiosk-3", "kiosk", device_id="kiosk-3")
    rekeyed, new_password_ = new_account("kiosk-1", "kiosk", device_id="kiosk-1")
    rc, _ = office.peer("kiosk-3", password).connect()
    assert rc.value == NOT_AUTHORIZED
    accounts = [a for a in office.accounts if a.username not in {"lobby", "kiosk-1"}]
    write_broker_files(
        office.files.config.parent,
        site=SITE,
        accounts=[*accounts, newcomer, rekeyed],
        port=office.broker.port,
        user=TEST_USER,
    )
    office.broker.reload()
    # Mosquitto cuts off clients whose account is gone or whose password changed.
    assert lobby.disconnected.get(timeout=WAIT_S).is_failure
    assert kiosk.disconnected.get(timeout=WAIT_S).is_failure
    assert_allowed(panel, T.counter_cmd("1"), watcher)  # still connected
    assert_allowed(office.login("kiosk-3", password=password), T.kiosk_issue("kiosk-3"), watcher)
    assert office.login("kiosk-1", password=new_password_)
    for username in ["lobby", "kiosk-1"]:  # with their old passwords
        rc, _ = office.peer(username).connect()
        assert rc.value == NOT_AUTHORIZED


# -- a real Mosquitto: TLS, and Mosquitto dropping root --------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=hub.test", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_listener_takes_the_same_accounts(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    accounts, passwords = office_accounts()
    port, tls_port = free_port(), free_port()
    tls = TlsListener(tls_port, cert, key, bind="127.0.0.1")
    files = write_broker_files(
        tmp_path / "broker", site=SITE, accounts=accounts, port=port, tls=tls, user=TEST_USER
    )
    require_mosquitto()
    broker = Mosquitto(files.config, tls_port)
    broker.start()
    peers: list[Peer] = []
    try:
        office = Office(broker, files, passwords, accounts, peers, tls_ca=cert)
        watcher = office.login("hub")
        assert watcher.subscribe(T.all()) == [1]
        assert_allowed(office.login("kiosk-1"), T.kiosk_issue("kiosk-1"), watcher)
        assert_refused(office.login("lobby"), T.calls(), office, watcher)
        rc, _ = office.peer(None).connect()
        assert rc.value == NOT_AUTHORIZED
    finally:
        for peer in peers:
            peer.close()
        broker.stop()


@pytest.fixture
def readable_dir() -> Iterator[Path]:
    """A directory the ``mosquitto`` user can reach (pytest's tmp_path is root's only)."""
    directory = Path(tempfile.mkdtemp(prefix="poradovnik-broker-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


@pytest.mark.skipif(not IS_ROOT, reason="Mosquitto drops root only when started as root")
def test_mosquitto_dropping_root_needs_the_files_chowned(readable_dir: Path) -> None:
    user = _broker_user()
    accounts, passwords = office_accounts()
    port = free_port()

    def start(chown_to: str | None) -> Mosquitto:
        files = write_broker_files(
            readable_dir, site=SITE, accounts=accounts, port=port, chown_to=chown_to
        )
        require_mosquitto()
        broker = Mosquitto(files.config, port)
        broker.start()
        return broker

    # Root's 0600 password file: Mosquitto, already the mosquitto user, cannot read it.
    with pytest.raises(BrokerError, match="Unable to open pwfile"):
        start(chown_to=None)
    broker = start(chown_to=user)
    office = Office(broker, BrokerFiles(*[readable_dir] * 4), passwords, accounts)
    try:
        watcher = office.login("hub")
        assert watcher.subscribe(T.all()) == [1]
        assert_allowed(office.login("panel-b"), T.counter_cmd("3"), watcher)
        # A reload re-reads the files as the mosquitto user.
        lobby = office.login("lobby")
        write_broker_files(
            readable_dir,
            site=SITE,
            accounts=[a for a in accounts if a.username != "lobby"],
            port=port,
            chown_to=user,
        )
        broker.reload()
        assert lobby.disconnected.get(timeout=WAIT_S).is_failure
        assert_allowed(office.login("kiosk-2"), T.kiosk_issue("kiosk-2"), watcher)
    finally:
        for peer in office.peers:
            peer.close()
        broker.stop()
