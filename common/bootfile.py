"""The per-device file on an appliance's boot partition, and the settings made from it.

An office prepares each SD card by putting one small ``poradovnik.toml`` on its boot
partition (the FAT partition any computer can write): what the device is, which
office, where the hub is. At first boot ``poradovnik setup`` (run by
poradovnik-firstboot.service) turns it into the device's settings file,
/etc/poradovnik/poradovnik.toml. A commented example is
image-build/modules/poradovnik/filesystem/boot/poradovnik.toml.
"""

from __future__ import annotations

import secrets
import socket
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import Field, ValidationError

from common.files import write_private_file
from common.identity import HUB_DEVICE_ID
from common.section import Section
from common.settings import Role, Settings, SettingsError, Slug, load_settings

__all__ = ["BootFile", "read_boot_file", "settings_from_boot_file", "write_settings"]


class BootFile(Section):
    """The boot partition's ``poradovnik.toml``."""

    role: Role
    """What this device is: hub, kiosk, display or counter."""

    site: Slug
    """The office's short name, the same on the hub and all its devices."""

    hub: str | None = Field(default=None, min_length=1, pattern=r"^[^\s:]+(:[0-9]{1,5})?$")
    """The hub's address, ``host`` or ``host:port`` (port 1883 by default); devices only."""

    device_id: Slug | None = None
    """This device's short name in the office; default: the host name."""

    hostname: Slug | None = None
    """The host name to give this device; default: ``device_id``, if set."""

    provisioning: bool | None = None
    """Pair with the hub at start (the device shows a code). Default: pair unless the
    device is already paired for the same site and device id."""

    read_only: bool = False
    """Make the root file system read-only, for a device switched off at the wall: what
    Poradovník keeps goes to a data partition of its own, everything else is reset at
    each start. Turned on and off at first boot, with one more restart."""

    settings: dict[str, Any] = Field(default_factory=dict)
    """Further settings, as in the settings file (``[settings.kiosk]``, ``[settings.site]``...)."""


def read_boot_file(path: Path) -> BootFile:
    """Read and check the boot file; raise :class:`SettingsError` naming every problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise SettingsError([f"{path}: no boot file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError([f"{path}: cannot read it: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"{path}: TOML syntax error: {exc}"]) from None
    try:
        boot = BootFile.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(
            [
                f"{path}: {'.'.join(str(p) for p in error['loc']) or 'file'}: "
                f"{error['msg'].removeprefix('Value error, ')}"
                for error in exc.errors()
            ]
        ) from None
    if boot.role != "hub" and boot.hub is None:
        raise SettingsError(
            [f'{path}: hub: missing; a {boot.role} needs the hub\'s address, hub = "10.0.0.2"']
        )
    return boot


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def settings_from_boot_file(boot: BootFile, current: Settings | None = None) -> dict[str, Any]:
    """The settings file's contents for ``boot``; ``current`` are the device's settings, if any.

    A device keeps its broker account when it stays the same device of the same site
    (and the boot file does not ask to pair again); otherwise it has none and pairs.
    The hub keeps its own broker password, or gets a new random one.
    """
    data = _merge(boot.settings, {"role": boot.role, "site": {"id": boot.site}})
    mqtt: dict[str, Any] = dict(data.get("mqtt", {}))
    if boot.role == "hub":
        old = current.mqtt.password if current is not None and current.role == "hub" else None
        # The hub's own broker account is named by its device id.
        mqtt.update(host="127.0.0.1", username=HUB_DEVICE_ID)
        mqtt["password"] = old.get_secret_value() if old else secrets.token_urlsafe(24)
        # Behind the image's nginx (TLS, limits): on loopback only, one proxy to trust.
        web = data.setdefault("web", {})
        web.setdefault("host", "127.0.0.1")
        web.setdefault("proxy_hops", 1)
        if not web.get("public_url") and not web.get("allowed_hosts"):
            # The names the office's phones reach it by (its certificate's too): the
            # host name, and on the LAN through mDNS. A city's own address goes in
            # [settings.web] public_url.
            name = boot.hostname or boot.device_id or socket.gethostname()
            web["allowed_hosts"] = [name, f"{name}.local"]
    else:
        assert boot.hub is not None  # checked by read_boot_file
        host, _, port = boot.hub.partition(":")
        mqtt["host"] = host
        if port:
            mqtt["port"] = int(port)
        device_id = boot.device_id or boot.hostname
        if device_id is not None:
            data = _merge(data, {"device": {"id": device_id}})
        same_device = (
            current is not None
            and current.role == boot.role
            and current.site.id == boot.site
            and (device_id is None or current.device.id == device_id)
            and current.mqtt.username is not None
            and current.mqtt.password is not None
        )
        if same_device and not boot.provisioning and current is not None:
            assert current.mqtt.password is not None
            mqtt.update(
                username=current.mqtt.username, password=current.mqtt.password.get_secret_value()
            )
            data = _merge(data, {"device": {"id": current.device.id}})
        elif boot.provisioning or not ("username" in mqtt and "password" in mqtt):
            mqtt.pop("username", None)
            mqtt.pop("password", None)
    data["mqtt"] = mqtt
    return data


def write_settings(boot_path: Path, settings_path: Path) -> tuple[BootFile, Settings]:
    """``poradovnik setup``: write the settings file from the boot file; return both.

    The new file is checked as a whole before it replaces the old one, so a bad boot
    file leaves the device as it was. Raises :class:`SettingsError`.
    """
    boot = read_boot_file(boot_path)
    try:
        current: Settings | None = load_settings(settings_path, env={})
    except SettingsError:
        current = None
    text = (
        f"# Poradovník settings of this {boot.role}, written at first boot from {boot_path}.\n"
        "# Check them with: poradovnik check-config (docs/config/ explains every key).\n"
        + tomli_w.dumps(settings_from_boot_file(boot, current))
    )
    write_private_file(settings_path, text, check=lambda path: load_settings(path, env={}))
    return boot, load_settings(settings_path, env={})
