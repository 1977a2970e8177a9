"""The office's Mosquitto broker: its configuration, and running it beside the hub.

The hub's broker admits no anonymous client. Every device, the hub itself and every
back-office system log in with their own user name and password, and a per-user ACL
lets each one write only the topics of its role (a lobby display cannot call a ticket,
a counter panel cannot act for another counter). This module generates the three files
Mosquitto needs for that: the configuration (:func:`render_config`), the password
file (:func:`render_password_file`) and the ACL file (:func:`render_acl`), from the
accounts of :mod:`sync_agent.broker_accounts`; :func:`write_broker_files` writes all
three safely. ``docs/broker.md`` describes the result for people.

On an appliance systemd runs Mosquitto with the configuration the hub generates.
The demo and the tests run their own with :class:`Mosquitto`, on a free port of
127.0.0.1, so they can stop and restart it at will.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from common.errors import PoradovnikError
from common.settings import BrokerSettings, MqttSettings
from sync_agent.broker_accounts import ROLES, TOPIC_ID, Account, Role, new_account
from sync_agent.city_protocol import BRIDGED_IN, BRIDGED_OUT, CITY, CityTopics
from sync_agent.protocol import ANY, MAX_PAYLOAD_BYTES, Topics

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
"""How long Mosquitto may take to accept connections after it starts."""


class BrokerError(PoradovnikError):
    """Mosquitto could not be started or is not installed."""


def _die_with_parent() -> None:
    """In the broker's process before exec: end it when the process that started it dies.

    A demo or a test run that is killed must not leave a broker behind (Linux only).
    The signal follows the *thread* that started the broker: start it from a thread
    that lives as long as the broker should.
    """
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: nothing to load after fork


def own_files_user() -> str | None:
    """The ``user`` for a broker that must read files this process owns (demo, tests).

    Started as root, Mosquitto drops to its own user unless told to stay root; a
    non-root process's broker runs as that process's user anyway.
    """
    return "root" if os.geteuid() == 0 else None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class Mosquitto:
    """One Mosquitto process with a given configuration file, started and stopped at will.

    ``port`` must be the port of the configuration's listener; :meth:`start`
    returns once the broker accepts connections there.
    """

    def __init__(self, config: Path, port: int, *, host: str = "127.0.0.1") -> None:
        self.config = config
        self.host = host
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log = config.with_suffix(".log")

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise BrokerError("mosquitto is not installed (Debian package 'mosquitto')")
        with self._log.open("ab") as out:
            self._process = subprocess.Popen(
                [binary, "-c", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl+C meant for us must not kill it before we
                # have said goodbye through it; it still dies with us (below).
                start_new_session=True,
                # Safe despite threads: it only makes one system call, no Python locks.
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"mosquitto exited at start: {self.tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port}: {self.tail()}")

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s) and wait for it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop the broker and start it again on the same port."""
        self.stop()
        self.start()

    def reload(self) -> None:
        """Send SIGHUP: Mosquitto re-reads its password and ACL files (listeners stay).

        Clients whose credentials are no longer valid are disconnected. The reload
        happens in the broker's own time, after this returns.
        """
        if self._process is None or self._process.poll() is not None:
            raise BrokerError("mosquitto is not running")
        self._process.send_signal(signal.SIGHUP)

    def tail(self, lines: int = 20) -> str:
        """The end of the broker's log, for error messages."""
        try:
            return " | ".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- the accounts, in the files' order ----------------------------------------------


def _ordered(accounts: Iterable[Account]) -> list[Account]:
    """The accounts in the files' order (by role, then user name), checked to fit together."""
    ordered = sorted(accounts, key=lambda a: (ROLES.index(a.role), a.username))
    usernames: set[str] = set()
    topic_owners: dict[str, str] = {}
    for account in ordered:
        if account.username in usernames:
            raise ValueError(f"user name {account.username} is used twice")
        usernames.add(account.username)
        # Two accounts on one device id (or a back-office name equal to a device id)
        # would share status and reply topics: one could speak for the other.
        owner = account.device_id if account.role != "backoffice" else account.username
        if owner is None:
            continue
        if owner in topic_owners:
            raise ValueError(
                f"accounts {topic_owners[owner]} and {account.username} "
                f"both use the device topics of {owner!r}"
            )
        topic_owners[owner] = account.username
    return ordered


# -- the ACL file -------------------------------------------------------------------

Access = Literal["read", "write", "readwrite"]
"""An ACL rule's access: ``read`` lets subscriptions receive, ``write`` lets publish."""


def acl_rules(site: str, account: Account) -> list[tuple[Access, str]]:
    """What ``account`` may do on site ``site``: ``(access, topic filter)`` pairs.

    Anything not listed is denied. ``write`` also governs the account's last will;
    ``read`` is what lets a subscription receive messages.
    """
    topics = Topics(site)
    rules: list[tuple[Access, str]] = []
    if account.role == "hub":
        return [("readwrite", topics.all())]
    if account.role == "backoffice":
        return [
            ("write", topics.eservice_update()),
            ("read", topics.device_reply(account.username)),
        ]
    if account.role == "provision":
        # Answers carry no secret: a waiting device may read any of them.
        return [
            ("write", topics.provision_request(ANY)),
            ("read", topics.provision_reply(ANY)),
        ]
    device = account.device_id
    assert device is not None  # checked by Account
    rules += [
        ("write", topics.device_status(device)),
        ("write", topics.device_health(device)),
        ("read", topics.device_reply(device)),
        # Every device may tell whether the hub is up (to show "offline" itself).
        ("read", topics.hub_status()),
    ]
    queues = topics.queue("#")
    if account.role == "kiosk":
        rules += [
            ("write", topics.kiosk_issue(device)),
            ("write", topics.kiosk_blocks(device)),
            ("write", topics.kiosk_offline(device)),
            ("write", topics.kiosk_checkin(device)),
            ("read", queues),
        ]
    elif account.role == "display":
        rules += [("read", topics.calls()), ("read", queues), ("read", topics.counter_state(ANY))]
        rules += [("read", topics.counter_call(ANY, ANY))]
    else:  # counter
        rules += [("write", topics.counter_cmd(c)) for c in account.counters]
        rules += [("write", topics.counter_rating(c)) for c in account.counters]
        rules += [("read", topics.counter_state(c)) for c in account.counters]
        rules += [("read", queues), ("read", topics.calls())]
    return rules


def render_acl(site: str, accounts: Iterable[Account]) -> str:
    """The Mosquitto ACL file for ``site``: one ``user`` block per account, nothing else.

    Accounts come by role (hub, kiosk, display, counter, back office), then by user
    name, so the same accounts always give the same file. There are no ``pattern``
    lines and no anonymous rules: a user not listed may do nothing.
    """
    if not TOPIC_ID.fullmatch(site):
        raise ValueError(f"site id {site!r} cannot be a topic level")
    lines = [
        f"# Mosquitto ACL file of Poradovník site {site!r}.",
        "# Generated by hub.broker.render_acl; do not edit, regenerate it,",
        "# then reload Mosquitto (SIGHUP). Whatever is not granted here is denied.",
    ]
    for account in _ordered(accounts):
        what = account.role if account.device_id is None else f"{account.role} {account.device_id}"
        if account.counters:
            what += f", counters {', '.join(account.counters)}"
        lines += ["", f"# {what}", f"user {account.username}"]
        lines += [f"topic {access} {topic}" for access, topic in acl_rules(site, account)]
    return "\n".join(lines) + "\n"


def render_password_file(accounts: Iterable[Account]) -> str:
    """The Mosquitto password file: ``username:hash``, one account a line, in ACL order."""
    return render_passwords((a.username, a.password_hash) for a in _ordered(accounts))


def render_passwords(entries: Iterable[tuple[str, str]]) -> str:
    """A Mosquitto password file of ``(username, hash)`` entries, in the order given.

    The hub's (:func:`render_password_file`) and the city's broker write theirs with it.
    """
    lines = [
        "# Mosquitto password file of Poradovník.",
        "# Generated by hub.broker.render_passwords; do not edit.",
    ]
    for username, password_hash in entries:
        if any(c in username + password_hash for c in ":\r\n\0"):
            raise ValueError(f"account {username!r} cannot be written into a password file")
        lines.append(f"{username}:{password_hash}")
    return "\n".join(lines) + "\n"


# -- the configuration --------------------------------------------------------------

MAX_PACKET_BYTES = 4 * MAX_PAYLOAD_BYTES
"""Largest MQTT packet the broker takes (payload, topic and properties together).

Well above the protocol's payload limit, so every valid message fits with its topic
and properties, yet small enough that no client can make the broker buffer megabytes."""

MAX_QUEUED_MESSAGES = 10_000
"""QoS 1 messages the broker holds for one client that is behind (Mosquitto's default:
1000, beyond which it drops them). A hub catching up after a burst, or a display after a
pause, must not lose calls; the bound still caps the broker's memory."""

AUTOSAVE_INTERVAL_S = 300
"""How often Mosquitto writes its persistence file besides at a clean stop.

A clean stop (SIGTERM, ``systemctl restart``) always saves; this bounds what a power
cut loses, without writing the SD card every few seconds."""

PERSISTENT_CLIENT_EXPIRATION = "14d"
"""How long the broker keeps the session of a client that never comes back."""


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener for devices on the office network.

    ``certfile`` and ``keyfile`` are the broker's certificate chain and key (PEM).
    ``cafile``, when given, is the CA that client certificates are checked against;
    ``require_certificate`` makes a client certificate mandatory (passwords are still
    checked). ``bind`` ``None`` listens on every interface.
    """

    port: int
    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    bind: str | None = None
    require_certificate: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ValueError(f"TLS port {self.port} out of range")
        if self.require_certificate and self.cafile is None:
            raise ValueError("require_certificate needs a cafile to check certificates with")


def tls_listener(broker: BrokerSettings) -> TlsListener | None:
    """The TLS listener ``[broker]`` asks for, or ``None``; :class:`BrokerError` if incomplete."""
    if broker.tls_port is None:
        return None
    if broker.certfile is None or broker.keyfile is None:
        raise BrokerError("[broker] tls_port needs certfile and keyfile")
    return TlsListener(broker.tls_port, broker.certfile, broker.keyfile)


def _conf_value(value: str | Path, what: str) -> str:
    """A value for a mosquitto.conf line: Mosquitto reads up to the end of the line."""
    text = str(value)
    if not text or any(c in text for c in "\r\n\0"):
        raise ValueError(f"{what} {text!r} cannot be written into mosquitto.conf")
    if text != text.strip():
        raise ValueError(f"{what} {text!r}: Mosquitto would strip its leading/trailing spaces")
    return text


def render_config(
    *,
    port: int,
    bind: str = "127.0.0.1",
    data_dir: Path,
    password_file: Path,
    acl_file: Path,
    tls: TlsListener | None = None,
    persistence: bool = True,
    user: str | None = None,
    bridge: Bridge | None = None,
) -> str:
    """A complete ``mosquitto.conf`` for the hub's broker.

    One password file and one ACL file for every listener (``per_listener_settings
    false``), no anonymous access, the plain listener on ``bind:port`` and optionally
    a TLS listener. With ``persistence`` the broker keeps retained messages and the
    QoS 1 messages of persistent sessions in ``data_dir/mosquitto.db`` across
    restarts. It logs to stderr (systemd's journal), writes no pid file and no log
    file, so it runs the same under systemd and as a test's child process.

    ``user`` is whom Mosquitto drops to when started as root; ``None`` keeps its
    default, ``mosquitto``. ``"root"`` keeps root (for tests that run as root and keep
    their files where the ``mosquitto`` user cannot read them).

    ``bridge``, for a branch in a city, adds the bridge to the city's broker
    (:func:`render_bridge`) at the end.
    """
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    lines = [
        "# Mosquitto configuration of the Poradovník hub's broker.",
        "# Generated by hub.broker.render_config; do not edit, regenerate it.",
        "",
        "# One set of credentials and ACLs for every listener; nobody anonymous.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {_conf_value(password_file, 'password file')}",
        f"acl_file {_conf_value(acl_file, 'ACL file')}",
    ]
    if user is not None:
        lines.append(f"user {_conf_value(user, 'user')}")
    lines += [
        "",
        f"max_packet_size {MAX_PACKET_BYTES}",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "# Calls and answers are small and awaited: send each at once (no Nagle delay).",
        "set_tcp_nodelay true",
        f"persistent_client_expiration {PERSISTENT_CLIENT_EXPIRATION}",
        "",
    ]
    if persistence:
        location = _conf_value(data_dir, "data directory").rstrip("/") + "/"
        lines += [
            "persistence true",
            f"persistence_location {location}",
            "persistence_file mosquitto.db",
            f"autosave_interval {AUTOSAVE_INTERVAL_S}",
        ]
    else:
        lines.append("persistence false")
    lines += [
        "",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        "log_timestamp true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "",
        f"listener {port} {_conf_value(bind, 'bind address')}",
    ]
    if tls is not None:
        listener = f"listener {tls.port}"
        if tls.bind is not None:
            listener += f" {_conf_value(tls.bind, 'TLS bind address')}"
        lines += [
            "",
            listener,
            f"certfile {_conf_value(tls.certfile, 'certificate file')}",
            f"keyfile {_conf_value(tls.keyfile, 'key file')}",
            "tls_version tlsv1.2",
        ]
        if tls.cafile is not None:
            lines.append(f"cafile {_conf_value(tls.cafile, 'CA file')}")
            lines.append(f"require_certificate {str(tls.require_certificate).lower()}")
    text = "\n".join(lines) + "\n"
    return text if bridge is None else f"{text}\n{render_bridge(bridge)}"


BRIDGE_NAME = "city"
"""The bridge's ``connection`` name (Mosquitto names its local client ``<host>.city``)."""

BRIDGE_RESTART_S = (2, 30)
"""The bridge's reconnect backoff (Mosquitto's ``restart_timeout base cap``), in seconds.

Mosquitto waits a random time between the base and a bound that grows threefold per
failed attempt up to the cap: a branch is back within seconds of a short WAN cut and
within half a minute of a long one, and a few hundred branches reconnecting after the
city's broker restarts come spread over that half minute, one attempt each per wait."""


@dataclass(frozen=True)
class Bridge:
    """A Mosquitto bridge from a branch's broker to the city's (``[uplink]``).

    It carries :data:`~sync_agent.city_protocol.BRIDGED_OUT` below the branch's site
    root to the city and :data:`~sync_agent.city_protocol.BRIDGED_IN` back, at QoS 1,
    in a persistent session (``cleansession false``) so nothing queued is dropped at a
    reconnect. ``cafile`` checks the city's certificate (``None``: the system's CAs);
    ``certfile`` and ``keyfile`` are an optional client certificate. With ``tls`` off
    the link is plain (the settings warn).
    """

    site: str
    host: str
    port: int
    username: str
    password: SecretStr
    tls: bool = True
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    def __post_init__(self) -> None:
        if not TOPIC_ID.fullmatch(self.site):
            raise ValueError(f"site id {self.site!r} cannot be a topic level")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"bridge port {self.port} out of range")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("the bridge's certfile and keyfile go together")
        if not self.tls and (self.cafile or self.certfile):
            raise ValueError("the bridge's certificates need TLS")

    @property
    def client_id(self) -> str:
        """The bridge's client id at the city's broker."""
        return f"poradovnik-bridge-{self.site}"

    @property
    def notification_topic(self) -> str:
        """Where the bridge says whether it is connected (:func:`bridge_status_topic`)."""
        return bridge_status_topic(self.site)


def bridge_status_topic(site: str) -> str:
    """Where a branch's bridge says whether it is connected (``1``) or not (``0``).

    Retained, on the branch's broker only: the city's ACL lets a branch write only what
    the bridge carries out. The hub's uplink sends nothing while it says ``0``.
    """
    return f"{CityTopics(site).base}/{CITY}/bridge"


def render_bridge(bridge: Bridge) -> str:
    """The ``connection`` section of ``mosquitto.conf`` for ``bridge`` (it holds its password)."""
    prefix = CityTopics(bridge.site).base + "/"
    host = _conf_value(bridge.host, "city broker host")
    lines = [
        "# The bridge to the city's broker ([uplink]): the branch's state and history out,",
        "# the city's acknowledgements and catalogue in. Restart Mosquitto after a change.",
        f"connection {BRIDGE_NAME}",
        f"address {host}:{bridge.port}",
        f"remote_clientid {bridge.client_id}",
        f"remote_username {_conf_value(bridge.username, 'bridge user name')}",
        f"remote_password {_conf_value(bridge.password.get_secret_value(), 'bridge password')}",
        "bridge_protocol_version mqttv311",
        "cleansession false",
        "try_private true",
        f"restart_timeout {BRIDGE_RESTART_S[0]} {BRIDGE_RESTART_S[1]}",
        "start_type automatic",
        "notifications true",
        "notifications_local_only true",
        f"notification_topic {bridge.notification_topic}",
    ]
    if bridge.tls:
        if bridge.cafile is not None:
            lines.append(f"bridge_cafile {_conf_value(bridge.cafile, 'bridge CA file')}")
        else:
            lines.append(f"bridge_capath {SYSTEM_CA_PATH}")
        if bridge.certfile is not None and bridge.keyfile is not None:
            lines.append(f"bridge_certfile {_conf_value(bridge.certfile, 'bridge certificate')}")
            lines.append(f"bridge_keyfile {_conf_value(bridge.keyfile, 'bridge key')}")
        lines += ["bridge_insecure false", "bridge_tls_version tlsv1.2"]
    lines += [f"topic {pattern} out 1 {prefix} {prefix}" for pattern in BRIDGED_OUT]
    lines += [f"topic {pattern} in 1 {prefix} {prefix}" for pattern in BRIDGED_IN]
    return "\n".join(lines) + "\n"


SYSTEM_CA_PATH = "/etc/ssl/certs"
"""Where the system's CA certificates are, for a bridge given no CA file of its own."""


# -- writing the files --------------------------------------------------------------

CONFIG_NAME = "mosquitto.conf"
PASSWORD_NAME = "passwd"
ACL_NAME = "acl"


@dataclass(frozen=True)
class BrokerFiles:
    """Where :func:`write_broker_files` put the broker's files."""

    config: Path
    """``mosquitto.conf``: give it to ``mosquitto -c``."""
    password_file: Path
    """The password file (mode 0600)."""
    acl_file: Path
    """The ACL file (mode 0640)."""
    data_dir: Path
    """Where the broker keeps ``mosquitto.db``."""


def write_broker_files(
    directory: Path,
    *,
    site: str,
    accounts: Iterable[Account],
    port: int,
    bind: str = "127.0.0.1",
    tls: TlsListener | None = None,
    data_dir: Path | None = None,
    persistence: bool = True,
    user: str | None = None,
    chown_to: str | None = None,
    bridge: Bridge | None = None,
) -> BrokerFiles:
    """Write the configuration, password and ACL files into ``directory``.

    Each file is replaced atomically (a temporary file in the same directory, then a
    rename), so a broker reloading meanwhile reads the old file or the new one, never
    half of one. The password file gets mode 0600, the ACL and the configuration
    0640. ``data_dir`` (default ``directory/data``) is created if missing.

    ``chown_to`` names the user Mosquitto runs as (``mosquitto`` on Debian): when
    this process is root, the password file, the ACL file and the data directory are
    given to that user and its group, because Mosquitto 2 reads those files only after
    dropping root. The configuration stays root's: Mosquitto reads it as root, and
    the broker's user should not be able to change it.

    Not root (the hub's own service user on the appliance), the files go to
    ``chown_to``'s *group* instead, when this process is a member of it: the password
    and ACL files become readable by that group (0640) and a new data directory
    writable by it (0770); Mosquitto, running as that user, reads them through the
    group. Otherwise ``chown_to`` is skipped with a warning. Other arguments are those
    of :func:`render_config`.

    With a ``bridge`` the configuration holds the bridge's password: it is then
    given to ``chown_to``'s group like the password file (its owner stays: Mosquitto
    may read it, to reload, but not change it) with mode 0640, or without
    ``chown_to`` written 0600; never readable by others.
    """
    accounts = list(accounts)
    files = broker_files(directory, data_dir)
    config = render_config(
        port=port,
        bind=bind,
        data_dir=files.data_dir,
        password_file=files.password_file,
        acl_file=files.acl_file,
        tls=tls,
        persistence=persistence,
        user=user,
        bridge=bridge,
    )
    return install_broker_files(
        files,
        config=config,
        passwords=render_password_file(accounts),
        acl=render_acl(site, accounts),
        persistence=persistence,
        chown_to=chown_to,
        secret_config=bridge is not None,
    )


def broker_files(directory: Path, data_dir: Path | None = None) -> BrokerFiles:
    """Where a broker's files go in ``directory`` (``data_dir`` default: ``directory/data``)."""
    directory = directory.absolute()
    return BrokerFiles(
        config=directory / CONFIG_NAME,
        password_file=directory / PASSWORD_NAME,
        acl_file=directory / ACL_NAME,
        data_dir=(directory / "data") if data_dir is None else data_dir.absolute(),
    )


def install_broker_files(
    files: BrokerFiles,
    *,
    config: str,
    passwords: str,
    acl: str,
    persistence: bool = True,
    chown_to: str | None = None,
    secret_config: bool = False,
) -> BrokerFiles:
    """Write a broker's rendered configuration, password file and ACL where ``files`` say.

    Safely, as :func:`write_broker_files` describes (which calls it, and so does the
    city's broker configuration): atomic replacement, modes, and the files given to
    ``chown_to``. The configuration is written last: a watcher of it (the appliance's
    ``poradovnik-broker-reload.path``) reloads the broker once all three are in place.
    A ``secret_config`` (a bridge's password in it) is kept from other users.
    """
    owner = _owner(chown_to)
    secret_mode, dir_mode = (
        (0o640, 0o770) if owner is not None and owner[0] == -1 else (0o600, 0o700)
    )
    files.config.parent.mkdir(parents=True, exist_ok=True)
    data_dir = files.data_dir
    if persistence and not data_dir.is_dir():
        data_dir.mkdir(parents=True)
        data_dir.chmod(dir_mode)
        if owner is not None:
            os.chown(data_dir, *owner)
    elif persistence and owner is not None and owner[0] != -1:
        os.chown(data_dir, *owner)
    _write_atomically(files.password_file, passwords, secret_mode, owner)
    _write_atomically(files.acl_file, acl, 0o640, owner)
    if not secret_config:
        _write_atomically(files.config, config, 0o640, None)
    elif owner is None:
        _write_atomically(files.config, config, 0o600, None)
    else:
        _write_atomically(files.config, config, 0o640, (-1, owner[1]))
    return files


def _owner(user: str | None) -> tuple[int, int] | None:
    """The uid and gid to give the broker's files to, or ``None`` to leave them.

    A uid of -1 keeps the file's owner and gives it only to the group: what a process
    that is not root but a member of the broker user's group can do.
    """
    if user is None:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise BrokerError(f"no user {user!r} to give the broker's files to") from None
    if os.geteuid() == 0:
        return entry.pw_uid, entry.pw_gid
    if entry.pw_uid == os.geteuid():
        return None
    if entry.pw_gid in os.getgroups() or entry.pw_gid == os.getegid():
        return -1, entry.pw_gid
    log.warning(
        "neither root nor in the group of user %s: the broker's files are not given to it", user
    )
    return None


def _write_atomically(path: Path, text: str, mode: int, owner: tuple[int, int] | None) -> None:
    """Replace ``path`` with ``text``: a temporary file beside it, synced, then renamed."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), mode)
            if owner is not None:
                os.fchown(out.fileno(), *owner)
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(frozen=True)
class LocalBroker:
    """A running broker of our own, and the ``[mqtt]`` settings of each of its accounts."""

    process: Mosquitto
    accounts: dict[str, MqttSettings]
    """By user name: host, port, user name and the account's fresh password."""
    logins: tuple[Account, ...] = ()
    """The accounts themselves: a hub answers devices by them (save them in its store)."""


@contextmanager
def local_broker(
    directory: Path,
    site: str,
    logins: Iterable[tuple[str, Role, Mapping[str, Any]]],
    *,
    bridge: Bridge | None = None,
) -> Iterator[LocalBroker]:
    """Run a Mosquitto on 127.0.0.1 for the demo, the tests and the benchmarks.

    Each login is ``(username, role, extra)``, ``extra`` being :func:`new_account`'s
    keyword arguments (``device_id``, ``counters``); every account gets a fresh
    password. With a ``bridge`` (a branch in a city) it is bridged to the city's
    broker. The files go to ``directory``; the broker stops on leaving.
    """
    port = free_port()
    accounts, settings = [], {}
    for username, role, extra in logins:
        account, password = new_account(username, role, **extra)
        accounts.append(account)
        settings[username] = MqttSettings(
            host="127.0.0.1", port=port, username=username, password=SecretStr(password)
        )
    files = write_broker_files(
        directory, site=site, accounts=accounts, port=port, user=own_files_user(), bridge=bridge
    )
    process = Mosquitto(files.config, port)
    process.start()
    try:
        yield LocalBroker(process, settings, tuple(accounts))
    finally:
        process.stop()
