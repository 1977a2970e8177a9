"""Pairing a new device with the office's hub: the hub's side.

A device that is not paired shows a six-digit code and keeps asking over MQTT (see
:mod:`sync_agent.provisioning`). :func:`pair_device` is what the admin's
"pair" does, from ``poradovnik device pair CODE`` or the admin page: it listens for the
request with that code, creates the device's broker account from the password hash
the device sent (replacing any account of that device id: this is how a broken device
is replaced), rewrites the broker's files, answers the device, and waits until the
device comes online with its new account.
"""

from __future__ import annotations

import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from common.errors import PoradovnikError
from common.identity import HUB_DEVICE_ID
from common.settings import Settings
from hub.accounts import write_broker_config
from hub.database import open_store
from sync_agent.broker_accounts import PROVISION_USERNAME, Account, Role
from sync_agent.connection import Inbound, MqttConnection
from sync_agent.protocol import (
    ANY,
    PAIRING_CODE_DIGITS,
    DeviceStatus,
    PairingReply,
    PairingRequest,
    ProtocolError,
    Topics,
    decode,
)
from sync_agent.provisioning import REQUEST_INTERVAL_S

__all__ = ["Paired", "PairingError", "normalize_code", "pair_device"]

log = logging.getLogger(__name__)

LISTEN_S = 4 * REQUEST_INTERVAL_S
"""How long the hub listens for the device with the code: it asks every few seconds."""

ONLINE_WAIT_S = 30.0
"""How long the hub waits for the paired device to come online with its account."""

CONNECT_TIMEOUT_S = 10.0
"""How long the hub may take to log in to its own broker."""


class PairingError(PoradovnikError):
    """The device could not be paired; the message says why and what to do."""


@dataclass(frozen=True)
class Paired:
    """What :func:`pair_device` did."""

    account: Account
    """The device's new broker account (it replaced any of the same device id)."""
    online: bool
    """Whether the device came online with it within the wait."""


def normalize_code(code: str) -> str:
    """The code as the device sent it: digits only (people type ``483 127`` or ``483-127``)."""
    digits = re.sub(r"[\s-]", "", code)
    if not re.fullmatch(rf"[0-9]{{{PAIRING_CODE_DIGITS}}}", digits):
        msg = f"{code!r} is not a pairing code: it has {PAIRING_CODE_DIGITS} digits, like 483 127"
        raise PairingError(msg, code="invalid_pairing_code", params={"digits": PAIRING_CODE_DIGITS})
    return digits


@dataclass(frozen=True)
class _Request:
    token: str
    request: PairingRequest


def pair_device(
    settings: Settings,
    code: str,
    *,
    role: Role,
    counters: Iterable[str] = (),
    device_id: str | None = None,
    reload: Callable[[], None] | None = None,
    listen_s: float = LISTEN_S,
    online_wait_s: float = ONLINE_WAIT_S,
) -> Paired:
    """Pair the device showing ``code`` as a ``role``; return its account.

    ``device_id`` is the id the device gets; by default the one it proposes (from its
    boot file or host name). Giving the id of an existing device replaces that
    device: its old account and password stop working. ``counters`` are the counters
    a counter panel acts for. ``reload`` makes the broker re-read its files; on the
    appliance leave it ``None``: poradovnik-broker-reload.path reloads Mosquitto when
    the files change. Raises :class:`PairingError`.

    Blocks for a few seconds (the device repeats its request every
    :data:`~sync_agent.provisioning.REQUEST_INTERVAL_S`), then up to
    ``online_wait_s`` for the device to log in; ``online_wait_s=0`` does not wait.
    """
    code = normalize_code(code)
    if role not in {"kiosk", "display", "counter"}:
        raise PairingError(
            f"only kiosks, displays and counter panels are paired, not {role!r}",
            code="not_pairable",
        )
    topics = Topics(settings.site.id)
    requests: queue.Queue[_Request] = queue.Queue()
    online: threading.Event = threading.Event()
    watched: list[str] = []

    def on_request(message: Inbound) -> None:
        token = message.topic.split("/")[-2]
        try:
            request = decode(PairingRequest, message.payload)
        except ProtocolError as bad:
            log.warning("ignored a pairing request on %s: %s", message.topic, bad.message)
            return
        if request.code == code:
            requests.put(_Request(token, request))

    def on_status(message: Inbound) -> None:
        # Only a status published now counts: the retained one may be an old device's.
        if message.retain or not watched or message.topic != topics.device_status(watched[0]):
            return
        try:
            status = decode(DeviceStatus, message.payload)
        except ProtocolError:
            return
        if status.state == "online":
            online.set()

    connection = MqttConnection(
        mqtt=settings.mqtt, client_id=f"{HUB_DEVICE_ID}-pairing-{secrets.token_hex(4)}"
    )
    connection.subscribe(topics.provision_request(ANY), on_request)
    connection.subscribe(topics.device_status(ANY), on_status)
    connection.start()
    try:
        if not connection.subscribed.wait(CONNECT_TIMEOUT_S):
            msg = (
                f"cannot log in to the broker at {settings.mqtt.host}:{settings.mqtt.port} "
                "with the hub's [mqtt] account; is Mosquitto running?"
            )
            raise PairingError(msg, code="broker_unreachable")
        found = _the_request(requests, code, listen_s)
        request = found.request
        if request.role != role:
            msg = (
                f"the device with code {code} is set up as a {request.role} (its boot file); "
                f"pair it with --role {request.role}, or change its boot file and restart it"
            )
            raise PairingError(msg, code="role_mismatch", params={"role": request.role})
        account = _save_account(settings, request, role, device_id, counters)
        try:
            write_broker_config(settings)
        except PoradovnikError as exc:
            raise PairingError(f"the account is saved, but {exc}", code="broker_config") from None
        if reload is not None:
            reload()
        watched.append(account.device_id or account.username)
        reply = PairingReply(
            msg_id=request.msg_id,
            code=code,
            role=request.role,
            site=settings.site.id,
            device_id=watched[0],
            username=account.username,
            counters=list(account.counters),
        )
        connection.publish(
            topics.provision_reply(found.token), reply.encode(), correlation=request.msg_id.encode()
        )
        log.info("paired %s %s (code %s)", role, watched[0], code)
        return Paired(account, online.wait(online_wait_s) if online_wait_s > 0 else False)
    finally:
        connection.stop()


def _the_request(requests: queue.Queue[_Request], code: str, listen_s: float) -> _Request:
    """The one device asking with ``code``; refuse when none, or two, ask with it."""
    deadline = time.monotonic() + listen_s
    first: _Request | None = None
    # After the first, listen one more round: a second device with the same code
    # (by chance, or someone copying the code off a screen) makes it ambiguous.
    while (left := deadline - time.monotonic()) > 0:
        try:
            found = requests.get(timeout=left)
        except queue.Empty:
            break
        if first is None:
            first = found
            deadline = min(deadline, time.monotonic() + REQUEST_INTERVAL_S + 0.5)
        elif found.token != first.token:
            msg = (
                f"two devices ask with code {code}; restart the device you want to pair "
                "(it shows a new code) and enter that one"
            )
            raise PairingError(msg, code="pairing_code_twice")
    if first is None:
        msg = (
            f"no device asks to be paired with code {code}; check the code on the device's "
            "screen or log, and that it reaches this hub's broker (the hub address in its "
            "boot file)"
        )
        raise PairingError(msg, code="no_pairing_request")
    return first


def _save_account(
    settings: Settings,
    request: PairingRequest,
    role: Role,
    device_id: str | None,
    counters: Iterable[str],
) -> Account:
    device = device_id or request.device_id
    if device in {HUB_DEVICE_ID, PROVISION_USERNAME}:
        raise PairingError(
            f"{device!r} is reserved; choose another device id",
            code="reserved_device",
            params={"device": device},
        )
    try:
        account = Account(
            device,
            role,
            device_id=device,
            counters=tuple(counters),
            password_hash=request.password_hash,
        )
    except ValueError as bad:
        raise PairingError(str(bad), code="invalid_account") from None
    store = open_store(settings)
    try:
        store.save_account(account, at=datetime.now(UTC))
    finally:
        store.close()
    return account
