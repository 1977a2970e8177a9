"""The office's broker accounts: one login per device, kept in the hub's database.

``poradovnik device add|list|remove`` manage them, and ``poradovnik broker
config`` writes Mosquitto's configuration, password file and ACL from them (see
docs/broker.md). Only password hashes are stored; a new password is shown once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from common.errors import PoradovnikError
from common.identity import HUB_DEVICE_ID
from common.settings import Settings
from hub.broker import Bridge, BrokerError, BrokerFiles, tls_listener, write_broker_files
from hub.database import open_store
from sync_agent.broker_accounts import (
    PROVISION_PASSWORD,
    PROVISION_USERNAME,
    Account,
    Role,
    hash_password,
    new_account,
)


class AccountError(PoradovnikError):
    """An account operation that cannot be done; the message says why and what to do."""


def add_device(
    settings: Settings, device_id: str, role: Role, counters: tuple[str, ...] = ()
) -> tuple[Account, str]:
    """Create (or replace) the broker account of a device; return it and its new password.

    A device's user name is its id. A back-office system (role ``backoffice``) has
    no device id; its user name is the given id.
    """
    if device_id == HUB_DEVICE_ID or role == "hub":
        raise AccountError("the hub's own account comes from its [mqtt] settings")
    if device_id == PROVISION_USERNAME or role == "provision":
        raise AccountError(f"{PROVISION_USERNAME!r} is the account of devices waiting to be paired")
    try:
        account, password = new_account(
            device_id,
            role,
            device_id=None if role == "backoffice" else device_id,
            counters=counters,
        )
    except ValueError as bad:
        raise AccountError(str(bad)) from None
    store = open_store(settings)
    try:
        store.save_account(account, at=datetime.now(UTC))
    finally:
        store.close()
    return account, password


def remove_device(settings: Settings, username: str) -> bool:
    """Delete a device's broker account; ``False`` if there was none."""
    store = open_store(settings)
    try:
        return store.delete_account(username)
    finally:
        store.close()


def list_devices(settings: Settings) -> list[Account]:
    """Every device's broker account."""
    store = open_store(settings)
    try:
        return store.accounts()
    finally:
        store.close()


def hub_account(settings: Settings) -> Account:
    """The hub's own account, from its ``[mqtt] username`` and ``password``."""
    password = settings.mqtt.password
    if password is None or not password.get_secret_value():
        raise AccountError(
            "[mqtt] password: the hub's own broker account needs one; set a long random "
            "string there (the hub logs in with it)"
        )
    return Account(
        settings.mqtt.username or HUB_DEVICE_ID,
        "hub",
        device_id=HUB_DEVICE_ID,
        password_hash=hash_password(password.get_secret_value()),
    )


def provision_account() -> Account:
    """The account devices waiting to be paired share; it may only ask to be paired."""
    return Account(PROVISION_USERNAME, "provision", password_hash=hash_password(PROVISION_PASSWORD))


def city_bridge(settings: Settings) -> Bridge | None:
    """The bridge to the city's broker from ``[uplink]`` (``None``: no city)."""
    uplink = settings.uplink
    if uplink.host is None or uplink.username is None or uplink.password is None:
        return None
    return Bridge(
        site=settings.site.id,
        host=uplink.host,
        port=uplink.port,
        username=uplink.username,
        password=uplink.password,
        tls=uplink.tls,
        cafile=uplink.cafile,
        certfile=uplink.certfile,
        keyfile=uplink.keyfile,
    )


def write_broker_config(settings: Settings) -> BrokerFiles:
    """Write Mosquitto's files for every account, and the pairing one, into ``[broker] dir``.

    With ``[uplink]`` set, the configuration bridges the broker to the city's.
    """
    broker = settings.broker
    try:
        tls = tls_listener(broker)
    except BrokerError as bad:
        raise AccountError(str(bad)) from None
    accounts = [hub_account(settings), provision_account(), *list_devices(settings)]
    try:
        return write_broker_files(
            broker.dir,
            site=settings.site.id,
            accounts=accounts,
            port=broker.port,
            bind=broker.bind,
            tls=tls,
            chown_to=broker.run_as,
            bridge=city_bridge(settings),
        )
    except (ValueError, OSError, BrokerError) as bad:
        raise AccountError(f"cannot write the broker's files in {broker.dir}: {bad}") from None
