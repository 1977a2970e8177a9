"""Broker accounts: who logs in to the office's MQTT broker, and how passwords are hashed.

Every device, the hub and every back-office system logs in to the office's Mosquitto
with an account of its own (:class:`Account`); a device not paired yet logs in with
the shared ``provision`` account. Passwords are kept only as Mosquitto ``$7$``
hashes (:func:`hash_password`). The hub writes the accounts into Mosquitto's files
(:mod:`hub.broker`) and keeps them in its database; a device being paired hashes the
password it chose for itself (:mod:`sync_agent.provisioning`). ``docs/broker.md``
describes the accounts and the hash format for people.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "DEVICE_ROLES",
    "PASSWORD_ITERATIONS",
    "PROVISION_PASSWORD",
    "PROVISION_USERNAME",
    "ROLES",
    "SALT_BYTES",
    "TOPIC_ID",
    "Account",
    "Role",
    "hash_password",
    "new_account",
    "new_password",
    "verify_password",
]

Role = Literal["hub", "kiosk", "display", "counter", "backoffice", "provision"]
"""Who logs in to the broker: the hub, a device of one of the three kinds, a
back-office system that pushes e-service updates, or the shared account of devices
waiting to be paired (``provision``: it may only ask to be paired)."""

ROLES: tuple[Role, ...] = get_args(Role)
"""Every role, in the order the generated files list their accounts."""

DEVICE_ROLES: frozenset[Role] = frozenset({"kiosk", "display", "counter"})
"""Roles that are devices and must name their device id."""

PROVISION_USERNAME = "provision"
"""The broker account every device that is not paired yet logs in with."""

PROVISION_PASSWORD = "poradovnik-pairing"
"""The ``provision`` account's password: the same on every appliance, and no secret.

The account may only publish pairing requests and read their answers, which carry
no secret (a device sends the *hash* of the password it chose for itself; see
docs/protocol.md, "Pairing"). Knowing it lets nobody read or change the queue."""

PASSWORD_ITERATIONS = 101
"""PBKDF2 rounds of a ``$7$`` hash: what ``mosquitto_passwd`` 2.0 writes.

Mosquitto runs PBKDF2 at every CONNECT; the passwords :func:`new_password` makes are
random and 192 bits strong, so more rounds would cost the broker and buy nothing."""

SALT_BYTES = 12
"""Length of a ``$7$`` hash's salt: Mosquitto 2.0 drops an entry whose salt is not 12 bytes
("Unable to decode password salt for user …, removing entry")."""

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A user name: fits a topic level (a back-office reply topic) and has no ``:``."""

TOPIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
"""A device, counter or site id: protocol v1's ``Id`` (one topic level, no wildcards)."""

_HASH = re.compile(r"\$(?:7\$[1-9][0-9]{0,8}|6)\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==")
"""What Mosquitto 2 takes from its password file: ``$7$`` (PBKDF2-SHA512) or the older
``$6$`` (SHA512), with a 12-byte salt and a 64-byte hash. Mosquitto drops any other
entry at load ("Unable to decode password salt"), so it is refused here instead."""


@dataclass(frozen=True)
class Account:
    """One broker login: who it is, what it may do (by role), and its password hash.

    ``device_id`` is the device's id in topics (``device/<id>/status``); kiosks,
    displays and counter panels must have one, the hub may, a back-office system must
    not (its replies go to ``device/<username>/reply``). ``counters`` are the counter
    ids a counter panel acts for (one Pi can serve several); only counter panels have
    them, and they must have at least one. Raises :class:`ValueError` when the account
    cannot be written into Mosquitto's files or does not fit its role.
    """

    username: str
    role: Role
    _: dataclasses.KW_ONLY
    device_id: str | None = None
    counters: tuple[str, ...] = ()
    password_hash: str = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counters", tuple(self.counters))
        if not _USERNAME.fullmatch(self.username):
            raise ValueError(
                f"user name {self.username!r}: use 1-64 letters, digits, '_', '.', '-' "
                "(starting with a letter or digit)"
            )
        if self.role not in ROLES:
            raise ValueError(f"account {self.username}: unknown role {self.role!r}")
        if self.device_id is not None and not TOPIC_ID.fullmatch(self.device_id):
            raise ValueError(f"account {self.username}: device id {self.device_id!r} invalid")
        if self.role in DEVICE_ROLES and self.device_id is None:
            raise ValueError(f"account {self.username}: a {self.role} needs a device id")
        if self.role in {"backoffice", "provision"} and self.device_id is not None:
            raise ValueError(f"account {self.username}: a {self.role} account has no device id")
        for counter in self.counters:
            if not TOPIC_ID.fullmatch(counter):
                raise ValueError(f"account {self.username}: counter id {counter!r} invalid")
        if len(set(self.counters)) != len(self.counters):
            raise ValueError(f"account {self.username}: a counter is listed twice")
        if self.role == "counter" and not self.counters:
            raise ValueError(f"account {self.username}: a counter panel needs its counters")
        if self.role != "counter" and self.counters:
            raise ValueError(f"account {self.username}: only a counter panel has counters")
        if not _HASH.fullmatch(self.password_hash):
            raise ValueError(
                f"account {self.username}: password_hash is not a Mosquitto hash "
                "($7$ from hash_password, or $6$)"
            )


def new_password() -> str:
    """A fresh random password for one account: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = PASSWORD_ITERATIONS
) -> str:
    """Hash ``password`` the way ``mosquitto_passwd`` does, for the password file.

    The result is ``$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512 over the
    password's UTF-8 bytes, a 12-byte salt (random unless given, for tests) and a
    64-byte hash, both in standard base64 with padding.
    """
    if not password:
        raise ValueError("the password is empty")
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    if len(salt) != SALT_BYTES:
        raise ValueError(f"the salt must be {SALT_BYTES} bytes, not {len(salt)}")
    if iterations < 1:
        raise ValueError("iterations must be positive")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (as Mosquitto would check it)."""
    match = re.fullmatch(r"\$7\$([1-9][0-9]*)\$([^$]+)\$([^$]+)", password_hash)
    if match is None:
        return False
    try:
        salt = base64.b64decode(match[2], validate=True)
        expected = base64.b64decode(match[3], validate=True)
    except binascii.Error:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(match[1]))
    return hmac.compare_digest(digest, expected)


def new_account(
    username: str,
    role: Role,
    *,
    device_id: str | None = None,
    counters: Iterable[str] = (),
    password: str | None = None,
) -> tuple[Account, str]:
    """An :class:`Account` with a new random password (or ``password``), and that password.

    The password is what the device's ``[mqtt] password`` must be set to; only its
    hash is kept in the account.
    """
    password = new_password() if password is None else password
    account = Account(
        username,
        role,
        device_id=device_id,
        counters=tuple(counters),
        password_hash=hash_password(password),
    )
    return account, password


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
