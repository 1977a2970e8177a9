"""Pairing a new device with the office's hub: the device's side.

A kiosk, display or counter panel whose settings have no broker account yet (a fresh
SD card) cannot talk to the hub. It pairs first:

1. It picks a six-digit **pairing code** and a broker password of its own, and logs in
   to the hub's broker with the shared ``provision`` account, which may only ask to be
   paired (see docs/broker.md).
2. It repeats a :class:`~sync_agent.protocol.PairingRequest` (the code, its
   role, the device id it proposes and the *hash* of its password) every few seconds.
   Headless devices log the code; screen roles show it (:class:`DevicePairing` is the
   API they use, see docs/appliance.md).
3. The office's admin types the code in on the hub (``poradovnik device pair CODE`` or
   the admin page). The hub creates the device's account with that hash and answers
   with the device's role, site, device id and user name.
4. The device logs in with its new account to make sure the broker takes it, then
   writes the account into its settings file and carries on as its role.

The password never leaves the device: the answer holds nothing secret.
"""

from __future__ import annotations

import enum
import logging
import queue
import secrets
import threading
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import SecretStr

from common.errors import PoradovnikError
from common.files import write_private_file
from common.settings import Settings, SettingsError, load_settings
from common.version import __version__
from sync_agent.broker_accounts import (
    PROVISION_PASSWORD,
    PROVISION_USERNAME,
    hash_password,
    new_password,
)
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.link import DeviceLink
from sync_agent.protocol import (
    PAIRING_CODE_DIGITS,
    PairingReply,
    PairingRequest,
    ProtocolError,
    Topics,
    decode,
)

__all__ = [
    "DevicePairing",
    "PairingFailed",
    "PairingState",
    "format_code",
    "needs_pairing",
    "new_pairing_code",
]

log = logging.getLogger(__name__)

REQUEST_INTERVAL_S = 3.0
"""How often a waiting device repeats its request (the hub listens for a while)."""

LOGIN_TIMEOUT_S = 60.0
"""How long the device tries its new account before it gives up and asks again: the
broker takes it once it has re-read its files."""


class PairingFailed(PoradovnikError):
    """The settings file could not be written after the hub paired the device."""


class PairingState(enum.StrEnum):
    """Where a pairing stands; screens show a line for each."""

    WAITING = "waiting"
    """Asking the hub, showing the code: the admin has not entered it yet."""
    NO_BROKER = "no_broker"
    """The hub's broker cannot be reached (network, address in the boot file)."""
    CHECKING = "checking"
    """The hub answered; trying the new account."""
    PAIRED = "paired"
    """Done: the settings file holds the account."""


def needs_pairing(settings: Settings) -> bool:
    """Whether this device has no broker account yet and must be paired first."""
    mqtt = settings.mqtt
    return settings.role != "hub" and (
        not mqtt.username or mqtt.password is None or not mqtt.password.get_secret_value()
    )


def new_pairing_code() -> str:
    """A fresh pairing code: six random digits."""
    return f"{secrets.randbelow(10**PAIRING_CODE_DIGITS):0{PAIRING_CODE_DIGITS}d}"


def format_code(code: str) -> str:
    """The code as people read it: ``483 127``."""
    half = len(code) // 2
    return f"{code[:half]} {code[half:]}"


@dataclass(frozen=True)
class _Answer:
    reply: PairingReply


class DevicePairing:
    """One device asking the hub to be paired, until it is.

    ``settings`` are the device's current settings (role, site, broker address, the
    device id it proposes); ``settings_file`` is where the account is written once
    paired. :attr:`code` is what to show. :meth:`run` does the work and blocks; a
    screen role runs it in a thread and draws :attr:`code` and :attr:`state`
    (:meth:`on_change` tells it when the state changes) until :attr:`done` is set.
    """

    def __init__(
        self,
        settings: Settings,
        settings_file: Path,
        *,
        code: str | None = None,
        request_interval_s: float = REQUEST_INTERVAL_S,
        login_timeout_s: float = LOGIN_TIMEOUT_S,
    ) -> None:
        if settings.role == "hub":
            raise ValueError("the hub is not paired; it pairs the others")
        self.settings = settings
        self.settings_file = settings_file
        self.code = code or new_pairing_code()
        """The pairing code to show: six digits (:func:`format_code` spaces them)."""
        self.state = PairingState.WAITING
        self.done = threading.Event()
        """Set once the device is paired and its settings file written."""
        self.reply: PairingReply | None = None
        """The hub's answer, once paired."""
        self.request_interval_s = request_interval_s
        self.login_timeout_s = login_timeout_s
        self.topics = Topics(settings.site.id)
        self._token = uuid.uuid4().hex
        self._password = new_password()
        self._msg_id = uuid.uuid4().hex
        self._listeners: list[Callable[[PairingState], object]] = []
        self._answers: queue.Queue[_Answer] = queue.Queue()

    def on_change(self, listener: Callable[[PairingState], object]) -> None:
        """Call ``listener(state)`` whenever :attr:`state` changes (from :meth:`run`'s thread)."""
        self._listeners.append(listener)

    def _set_state(self, state: PairingState) -> None:
        if state == self.state:
            return
        self.state = state
        for listener in self._listeners:
            try:
                listener(state)
            except Exception:
                log.exception("a pairing state listener failed")

    def request(self) -> PairingRequest:
        """What this device asks the hub, every :attr:`request_interval_s` seconds."""
        return PairingRequest(
            msg_id=self._msg_id,
            code=self.code,
            role=self.settings.role,
            device_id=self.settings.device.id,
            password_hash=hash_password(self._password),
            version=__version__,
            sent_at=datetime.now(UTC),
        )

    def run(self, stop: threading.Event, *, tick: Callable[[], object] = lambda: None) -> bool:
        """Ask until paired or ``stop``; write the settings file; ``True`` once paired.

        ``tick`` is called at least every :attr:`request_interval_s` seconds (the
        systemd watchdog ping). Raises :class:`PairingFailed` if the settings file
        cannot be written.
        """
        request = self.request()  # one hash for the whole pairing
        while not stop.is_set():
            reply = self._ask_until_answered(request, stop, tick)
            if reply is None:
                return False
            self._set_state(PairingState.CHECKING)
            if self._try_login(reply, stop, tick):
                self._write_settings(reply)
                self.reply = reply
                self._set_state(PairingState.PAIRED)
                self.done.set()
                log.info(
                    "paired with the hub as %s %s (broker user %s)",
                    reply.role,
                    reply.device_id,
                    reply.username,
                )
                return True
            if not stop.is_set():
                log.error(
                    "the hub paired this device, but the broker refused its account for %.0f s; "
                    "asking again (on the hub: is poradovnik-broker-reload.path active?)",
                    self.login_timeout_s,
                )
                self._set_state(PairingState.WAITING)
        return False

    def _provision_connection(self) -> MqttConnection:
        mqtt = self.settings.mqtt.model_copy(
            update={"username": PROVISION_USERNAME, "password": SecretStr(PROVISION_PASSWORD)}
        )
        connection = MqttConnection(mqtt=mqtt, client_id=f"provision-{self._token}")
        connection.subscribe(self.topics.provision_reply(self._token), self._on_reply)
        return connection

    def _ask_until_answered(
        self, request: PairingRequest, stop: threading.Event, tick: Callable[[], object]
    ) -> PairingReply | None:
        connection = self._provision_connection()
        connection.start()
        log.warning(
            "this %s is not paired with the hub yet: pairing code %s; enter it on the hub's "
            "admin page, or run there: poradovnik device pair %s --role %s",
            self.settings.role,
            format_code(self.code),
            self.code,
            self.settings.role,
        )
        try:
            while not stop.is_set():
                tick()
                if connection.connected.is_set():
                    self._set_state(PairingState.WAITING)
                    connection.publish(
                        self.topics.provision_request(self._token),
                        request.encode(),
                        response_topic=self.topics.provision_reply(self._token),
                        correlation=self._msg_id.encode(),
                        expiry_s=max(1, round(self.request_interval_s * 2)),
                    )
                else:
                    self._set_state(PairingState.NO_BROKER)
                try:
                    return self._answers.get(timeout=self.request_interval_s).reply
                except queue.Empty:
                    continue
            return None
        finally:
            connection.stop()

    def _on_reply(self, message: Inbound) -> None:
        try:
            reply = decode(PairingReply, message.payload)
        except ProtocolError as bad:
            log.warning("ignored a pairing answer: %s", bad.message)
            return
        problem = self._check(reply)
        if problem:
            log.warning("ignored a pairing answer: %s", problem)
            return
        self._answers.put(_Answer(reply))

    def _check(self, reply: PairingReply) -> str | None:
        if reply.msg_id != self._msg_id or reply.code != self.code:
            return "it answers another request"
        if reply.site != self.settings.site.id:
            return f"it is for site {reply.site!r}, this device is of {self.settings.site.id!r}"
        if reply.role != self.settings.role:
            return f"it makes this {self.settings.role} a {reply.role}"
        return None

    def _paired_settings(self, reply: PairingReply) -> Settings:
        mqtt = self.settings.mqtt.model_copy(
            update={"username": reply.username, "password": SecretStr(self._password)}
        )
        device = self.settings.device.model_copy(update={"id": reply.device_id})
        return self.settings.model_copy(update={"mqtt": mqtt, "device": device})

    def _try_login(
        self, reply: PairingReply, stop: threading.Event, tick: Callable[[], object]
    ) -> bool:
        """Log in with the new account (the hub sees the device come online)."""
        settings = self._paired_settings(reply)
        link = DeviceLink(
            mqtt=settings.mqtt,
            site=settings.site.id,
            device_id=settings.device.id,
            role=settings.role,
            outbox_path=None,
            backoff_base_s=0.2,
            backoff_cap_s=2.0,
        )
        link.start()
        try:
            waited = 0.0
            while waited < self.login_timeout_s and not stop.is_set():
                tick()
                if link.connected.wait(min(self.request_interval_s, 1.0)):
                    return True
                waited += min(self.request_interval_s, 1.0)
            return False
        finally:
            link.stop()

    def _write_settings(self, reply: PairingReply) -> None:
        """Put the account into the settings file, replacing it atomically."""
        path = self.settings_file
        try:
            data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {"role": self.settings.role}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PairingFailed(f"{path}: cannot read the settings file: {exc}") from None
        data.setdefault("site", {})["id"] = reply.site
        data.setdefault("device", {})["id"] = reply.device_id
        mqtt = data.setdefault("mqtt", {})
        mqtt["username"] = reply.username
        mqtt["password"] = self._password
        text = (
            "# Poradovník settings of this device; the [mqtt] account was written when it\n"
            "# was paired with the hub. Check it with: poradovnik check-config\n"
            + tomli_w.dumps(data)
        )
        try:
            write_private_file(path, text, check=load_settings)
        except SettingsError as exc:
            raise PairingFailed(f"the paired settings do not validate:\n{exc}") from None
        except OSError as exc:
            raise PairingFailed(f"{path}: cannot write the settings file: {exc}") from None
