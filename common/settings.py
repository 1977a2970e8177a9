"""Settings of one device: a TOML file, then ``PORADOVNIK_*`` environment variables on top.

Every device (hub, kiosk, lobby display, counter panel) reads one file, by default
:data:`DEFAULT_CONFIG_PATH`; ``--config FILE`` or ``PORADOVNIK_CONFIG`` name another one.
Every key can also be set in the environment as ``PORADOVNIK_<SECTION>__<KEY>``
(``PORADOVNIK_WEB__PORT=8081``), top-level keys as ``PORADOVNIK_<KEY>``
(``PORADOVNIK_ROLE=display``). The environment wins over the file.

:func:`load_settings` is the one way in. It reads the file and the environment through
pydantic-settings' own TOML and environment sources, which :class:`Settings`'
``settings_customise_sources`` puts in place while it runs. The sources add what a
device needs on top of the library's: they remember where each value came from, so
that when a value is wrong, :class:`SettingsError` names the file or the variable that
set it, the key as ``[section] key``, and the problem, one problem a line.
:class:`Settings` made directly only validates what it is given, so
``Settings(role="hub")`` in a test never picks up the developer's environment.

This module needs only pydantic and pydantic-settings: every role imports it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import time
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from common.counter_settings import CounterSettings
from common.display_settings import DisplaySettings
from common.i18n import LANGUAGES, Language
from common.kiosk_settings import KioskSettings
from common.mail_settings import AlertSettings, MailSettings, NotifySettings
from common.section import Section

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "MIN_PASSWORD_LENGTH",
    "AlertSettings",
    "BackupSettings",
    "CitySettings",
    "Country",
    "DataSettings",
    "DatabaseSettings",
    "DeviceSettings",
    "Language",
    "LogLevel",
    "LoggingSettings",
    "MailSettings",
    "MqttSettings",
    "NotifySettings",
    "QueueSettings",
    "RetentionSettings",
    "Role",
    "Settings",
    "SettingsError",
    "SiteSettings",
    "UplinkSettings",
    "WebSettings",
    "is_local_listener",
    "load_settings",
    "redact_url",
    "resolve_config_path",
    "settings_warnings",
]

DEFAULT_CONFIG_PATH = Path("/etc/poradovnik/poradovnik.toml")
"""Where a device's settings live unless ``--config`` or ``PORADOVNIK_CONFIG`` say otherwise."""

CONFIG_ENV_VAR = "PORADOVNIK_CONFIG"
"""The environment variable that names the settings file."""

ENV_PREFIX = "PORADOVNIK_"
"""Every settings variable starts with this; sections and keys are joined by ``__``."""

_ENV_DELIMITER = "__"

Role = Literal["hub", "kiosk", "display", "counter", "city"]
"""What a device is: the hub keeps the queue, the others are its devices; ``city`` is the
city's server, which sees every office (branch) of a city."""

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
"""How much a device logs."""

Country = Literal["SK", "CZ", "UA"]
"""A country whose offices the appliance serves: it decides the public holidays."""

_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SLUG_MAX = 63


def _check_slug(value: str) -> str:
    if len(value) > _SLUG_MAX or not _SLUG_RE.fullmatch(value):
        msg = (
            "must be a short name of lowercase letters a-z, digits and single hyphens "
            f"(like 'kosice-centrum'), at most {_SLUG_MAX} characters"
        )
        raise ValueError(msg)
    return value


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        msg = "unknown time zone; use an IANA name such as 'Europe/Bratislava' or 'Europe/Kyiv'"
        raise ValueError(msg) from None
    return value


def _check_languages(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        msg = "lists a language twice"
        raise ValueError(msg)
    return value


def _check_database_url(value: str | None) -> str | None:
    if value is not None and "://" not in value:
        msg = (
            "must be a database URL such as 'sqlite:////var/lib/poradovnik/hub.sqlite3' "
            "or 'postgresql+psycopg://poradovnik@db.example/poradovnik'"
        )
        raise ValueError(msg)
    return value


def _check_public_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
        msg = "must be an address such as 'https://poradovnik.example.sk' (no query or fragment)"
        raise ValueError(msg)
    return value.rstrip("/")


def _check_city_database_url(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.partition("://")[0].lower()
    if scheme.startswith("sqlite"):
        msg = (
            "SQLite cannot be the city's database: the city stores every branch's history "
            "from many writers at once (its consumer, its web pages) and must survive a "
            "database server's failure by failing over to a standby, which only "
            "PostgreSQL gives; use a URL such as "
            "'postgresql+psycopg://city@db.example/poradovnik_city'"
        )
        raise ValueError(msg)
    if "://" not in value or scheme.partition("+")[0] != "postgresql":
        msg = (
            "must be a PostgreSQL URL such as 'postgresql+psycopg://city@db.example/"
            "poradovnik_city' (several servers for failover: "
            "'postgresql+psycopg://city@/poradovnik_city?host=db1:5432&host=db2:5432"
            "&target_session_attrs=read-write')"
        )
        raise ValueError(msg)
    return value


_RATE_LIMIT_RE = re.compile(
    r"\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*"
    r"([;,]\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*)*"
)


def _check_rate_limit(value: str) -> str:
    if not _RATE_LIMIT_RE.fullmatch(value):
        msg = "must be rate limits such as '10/minute' or '10/minute;50/hour'"
        raise ValueError(msg)
    return value


MIN_PASSWORD_LENGTH = 12
"""Shorter broker passwords are refused: ``broker config`` gives the hub's account all rights."""

PLACEHOLDER_PASSWORDS = frozenset(
    {"change-me", "changeme", "change_me", "password", "secret", "poradovnik", "admin", "mqtt"}
)
"""Passwords of examples and habits, refused whatever their length."""


def _check_password(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    password = value.get_secret_value()
    if password.strip().lower() in PLACEHOLDER_PASSWORDS:
        msg = (
            "is a placeholder from an example; set the account's own password (for the hub, "
            "a long random one such as the output of `openssl rand -base64 24`)"
        )
        raise ValueError(msg)
    if len(password) < MIN_PASSWORD_LENGTH:
        msg = f"is too short; use at least {MIN_PASSWORD_LENGTH} characters (better: random ones)"
        raise ValueError(msg)
    return value


def is_local_listener(host: str) -> bool:
    """Whether ``host`` (``[web] host``) is reachable from this machine only.

    True for a loopback address, ``localhost`` and a Unix socket (``unix:/path`` or a path).
    """
    if host == "localhost" or host.startswith(("unix:", "/")):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_host_name(value: str) -> str:
    if not re.fullmatch(r"(\.?[A-Za-z0-9-]+)(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\]", value):
        msg = "must be a host name such as 'poradovnik.kosice.sk' (no scheme, port or path)"
        raise ValueError(msg)
    return value.lower()


def _check_optional_host(value: str | None) -> str | None:
    return None if value is None else _check_host_name(value)


def _check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        msg = "must be an address or network such as '127.0.0.1', '::1' or '10.0.0.0/8'"
        raise ValueError(msg) from None
    return value


def _strip_lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _strip_upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


Slug = Annotated[str, AfterValidator(_check_slug)]
"""A name that can go into an MQTT topic and a URL: ``a-z``, ``0-9`` and ``-``."""


def _host_slug() -> str:
    """Turn this machine's host name into a device id: ``Kiosk-1.local`` gives ``kiosk-1``."""
    name = socket.gethostname().split(".", 1)[0].lower()
    slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-")[:_SLUG_MAX].strip("-")
    return slug or "device"


class SiteSettings(Section):
    """``[site]``: the office this device belongs to."""

    id: Slug = "office"
    """Short name of the office; it goes into MQTT topics, so all devices of one office share
    it, and each office of a city has its own."""

    name: str = Field(default="Mestský úrad", min_length=1, max_length=80)
    """The office's name as citizens see it on tickets and screens."""

    timezone: Annotated[str, AfterValidator(_check_timezone)] = "Europe/Bratislava"
    """IANA time zone of the office: opening hours, the day's ticket numbers and reports
    follow it."""

    languages: Annotated[
        tuple[Language, ...], Field(min_length=1), AfterValidator(_check_languages)
    ] = LANGUAGES
    """Languages offered to citizens, from sk, cs, uk and en; the first one is the default."""

    country: Annotated[Country, BeforeValidator(_strip_upper)] = "SK"
    """The office's country, SK, CZ or UA: its public holidays close every service for the
    day (the hub reads them from the ``holidays`` package)."""

    @property
    def default_language(self) -> Language:
        """The language screens start in and tickets are printed in."""
        return self.languages[0]

    @property
    def tzinfo(self) -> ZoneInfo:
        """The office's time zone as a :class:`~zoneinfo.ZoneInfo`."""
        return ZoneInfo(self.timezone)


class MqttSettings(Section):
    """``[mqtt]``: the broker that links the hub and its devices."""

    host: str = Field(default="127.0.0.1", min_length=1)
    """Host name or address of the MQTT broker; on the hub itself usually 127.0.0.1."""

    port: int = Field(default=1883, ge=1, le=65535)
    """TCP port of the broker: 1883 plain, usually 8883 with TLS."""

    username: str | None = None
    """User name to log in to the broker with; none means anonymous."""

    password: Annotated[SecretStr | None, AfterValidator(_check_password)] = None
    """Password for the broker user; never printed or logged. At least 12 characters, and
    not a placeholder such as change-me."""

    tls: bool = False
    """Whether to talk to the broker over TLS."""

    ca_file: Path | None = None
    """CA certificate (PEM) to check the broker's certificate with; none means the system's
    CAs. A relative path is relative to the settings file."""


class DatabaseSettings(Section):
    """``[database]``: where the hub keeps the queue (hub only)."""

    url: Annotated[str | None, AfterValidator(_check_database_url)] = Field(
        default=None, repr=False
    )
    """SQLAlchemy URL of the hub's database; none means the SQLite file ``hub.sqlite3`` in
    ``[data] dir``."""


class WebSettings(Section):
    """``[web]``: the hub's admin page, counter panel page and citizen portal (hub only)."""

    host: str = Field(default="127.0.0.1", min_length=1)
    """Address the web server listens on; 0.0.0.0 for every network interface."""

    port: int = Field(default=8080, ge=1, le=65535)
    """TCP port the web server listens on."""

    public_url: Annotated[str | None, AfterValidator(_check_public_url)] = None
    """The portal's address as citizens reach it, e.g. https://poradovnik.kosice.sk; the
    kiosk prints it with /t/<ticket> in the ticket's QR code. None: the address each
    request came in on."""

    allowed_hosts: tuple[Annotated[str, AfterValidator(_check_host_name)], ...] = ()
    """Host names the web side answers to (besides public_url's); a request for another
    host gets 400. A leading dot allows every subdomain. Empty: any host name."""

    secret_key_file: Path | None = None
    """File holding the key that signs session cookies; created (readable by its owner
    only) at first start. None: web-secret.key in [data] dir. A relative path is relative
    to the settings file."""

    secure_cookies: bool = True
    """Send the login cookie over HTTPS only. Browsers accept such cookies over plain HTTP
    from localhost only: set false for a plain-HTTP lab or demo on another address."""

    proxy_hops: int = Field(default=0, ge=0, le=5)
    """How many reverse proxies (nginx…) stand in front of the hub; their
    X-Forwarded-For/-Proto headers are trusted that many hops deep (for rate limits and
    HTTPS detection). 0 when browsers reach the hub directly. More than 0 needs host on
    a loopback address (or a Unix socket), and public_url or allowed_hosts."""

    lookup_limit: Annotated[str, AfterValidator(_check_rate_limit)] = "10/minute;50/hour"
    """How many e-service status lookups one address may make, as rate limits such as
    "10/minute;50/hour": a wrong reference or PIN counts too."""

    login_limit: Annotated[str, AfterValidator(_check_rate_limit)] = "10/minute"
    """How many admin login attempts one address may make."""

    issue_limit: Annotated[str, AfterValidator(_check_rate_limit)] = "5/hour"
    """How many tickets one address may take through the REST API."""

    booking_limit: Annotated[str, AfterValidator(_check_rate_limit)] = "10/hour"
    """How many appointments one address may hold or book (portal and REST API) as rate
    limits such as "10/hour"; a refused one counts too."""

    booking_code_limit: Annotated[str, AfterValidator(_check_rate_limit)] = "20/minute;100/hour"
    """How many pages and API calls that name a booking code (show, cancel, move, the
    calendar file) one address may make: the code is the booking's only key."""

    remote_limit: Annotated[str, AfterValidator(_check_rate_limit)] = "4/hour;10/day"
    """How many remote tickets one address may ask for on the portal (a refused one
    counts too), as rate limits such as "4/hour;10/day"."""

    remote_per_browser: int = Field(default=2, ge=1, le=50)
    """How many remote tickets one browser may take per day (kept in a signed cookie)."""

    bookings_per_address: int = Field(default=4, ge=1, le=1000)
    """Active (held or booked, not yet over) appointments one client address may have."""

    bookings_per_email: int = Field(default=2, ge=1, le=100)
    """Active (booked, not yet over) appointments one e-mail address may have."""

    lockout_attempts: int = Field(default=5, ge=1, le=100)
    """Wrong PINs of one e-service reference, or wrong passwords of one user name, from any
    addresses, after which it is locked for lockout_min."""

    lockout_window_min: int = Field(default=60, ge=1, le=7 * 24 * 60)
    """The window, in minutes, in which lockout_attempts wrong attempts lock a reference or
    user name."""

    lockout_min: int = Field(default=15, ge=1, le=7 * 24 * 60)
    """How long, in minutes, a locked reference or user name answers 429 to every attempt."""

    target_wait_min: int = Field(default=15, ge=1, le=600)
    """The wait the office aims at, in minutes: the statistics show the share of citizens
    called within it, and while a walk-in has waited longer, appointments take at most
    ``[queue] appointment_share`` of the calls."""

    rating_window_h: int = Field(default=24, ge=1, le=30 * 24)
    """Hours after a visit ended with Done during which its citizen may rate it on the
    my-ticket page (1-5 and a comment), once."""

    workers: int = Field(default=8, ge=1, le=64)
    """Threads that run page and API requests; live pages (server-sent events) need none."""

    live_max_clients: int = Field(default=1000, ge=1, le=100_000)
    """At most this many live pages (queue, my ticket, dashboard) are pushed updates at
    once; more get 503 and fall back to reloading. Lowered at start (with a warning) when
    the web server admits too few connections for them (max_connections)."""

    head_timeout_s: float = Field(default=5.0, ge=0.5, le=60.0)
    """A connection must send a complete request head within this many seconds of
    opening (and a kept-alive one within this many seconds of the head's first byte);
    otherwise it is closed, so that idle sockets cannot hold the server's places."""

    max_connections: int | None = Field(default=None, ge=32, le=1_000_000)
    """Open connections at most (live pages included); past it a new connection takes
    the place of the one that has waited longest for a request head, or is answered 503
    when none waits. None: the process's open-file limit (LimitNOFILE) less 256 for the
    rest of the hub. The hub refuses to start when the file limit cannot hold the
    number given here."""

    metrics_from: tuple[Annotated[str, AfterValidator(_check_network)], ...] = Field(
        default=("127.0.0.1", "::1"), max_length=64
    )
    """Addresses and networks (e.g. "10.0.0.0/8") that may read /metrics (Prometheus);
    others get 404. The client's address is taken as proxy_hops says. Empty: nobody."""

    @field_validator("proxy_hops")
    @classmethod
    def _proxies_only_in_front(cls, hops: int, info: ValidationInfo) -> int:
        """Trust forwarded headers only when nothing but the proxy can reach the hub."""
        if not hops:
            return hops
        host = info.data.get("host")
        if isinstance(host, str) and not is_local_listener(host):
            msg = (
                f"trusts X-Forwarded-For, but [web] host = {host!r} lets clients reach the "
                "hub around the proxy and forge it; listen on 127.0.0.1 (or a Unix socket) "
                "behind the proxy, or set proxy_hops = 0"
            )
            raise ValueError(msg)
        configured = info.data.get("public_url") or info.data.get("allowed_hosts")
        if "public_url" in info.data and not configured:
            msg = (
                "behind a proxy, the portal's address must be configured: set public_url "
                "(or allowed_hosts)"
            )
            raise ValueError(msg)
        return hops


class DataSettings(Section):
    """``[data]``: where a device keeps its state."""

    dir: Path = Path("/var/lib/poradovnik")
    """Directory for the device's state: the hub's SQLite database, a kiosk's offline number
    blocks, caches. A relative path is relative to the settings file."""


class RetentionSettings(Section):
    """``[retention]``: how long the hub keeps what it records (hub only).

    Pruning runs once a day in the hub, in small transactions between the queue's own
    writes; today's tickets are never pruned. docs/operations.md lists the personal
    data each kind of record holds.
    """

    history_days: int = Field(default=400, ge=1, le=36_500)
    """Days the queue's history is kept: finished tickets (by their business day), the
    audit log of every transition, and the timelines of closed e-service applications
    (clerk names, notes). Statistics reach back this far."""

    working_days: int = Field(default=7, ge=1, le=365)
    """Days working records are kept: the answers to devices' commands (which make a
    resent command apply once only), kiosks' reserved number blocks, and delivered
    messages. A device offline longer than this must not resend older commands."""

    prune_at: time = time(2, 0)
    """Local time of day (in [site] timezone) the daily pruning starts; a hub that was
    off at that time prunes when it next runs that day."""

    batch: int = Field(default=500, ge=1, le=10_000)
    """Rows deleted per transaction: each batch is short, so the queue never waits long."""


class BackupSettings(Section):
    """``[backup]``: the hub's nightly copies of its database (hub only)."""

    nightly: bool = True
    """Whether the hub makes a backup every night, at [backup] at."""

    at: time = time(2, 30)
    """Local time of day (in [site] timezone) of the nightly backup; a hub that was off
    at that time makes it when it next runs that day."""

    dir: Path | None = None
    """Directory for the backups, e.g. a USB stick or a network share; none means
    backups in [data] dir. A relative path is relative to the settings file."""

    keep: int = Field(default=14, ge=1, le=1000)
    """How many nightly backups are kept; older ones are deleted after each backup."""


class BrokerSettings(Section):
    """``[broker]``: the office's Mosquitto, whose configuration the hub writes (hub only)."""

    dir: Path = Path("/etc/poradovnik/mosquitto")
    """Where ``poradovnik broker config`` writes mosquitto.conf, the password file and
    the ACL. A relative path is relative to the settings file."""

    port: int = Field(default=1883, ge=1, le=65535)
    """TCP port of the broker's plain listener."""

    bind: str = Field(default="0.0.0.0", min_length=1)
    """Address the broker listens on: 0.0.0.0 so that the office's devices reach it."""

    tls_port: int | None = Field(default=None, ge=1, le=65535)
    """Port of an additional TLS listener (usually 8883); none for no TLS listener."""

    certfile: Path | None = None
    """The TLS listener's certificate (PEM). A relative path is relative to the file."""

    keyfile: Path | None = None
    """The TLS listener's private key (PEM). A relative path is relative to the file."""

    run_as: str | None = "mosquitto"
    """The user Mosquitto runs as: its password and ACL files are given to this user,
    because Mosquitto 2 reads them after dropping root."""


class UplinkSettings(Section):
    """``[uplink]``: this branch's link to the city's broker (hub only).

    With ``host`` set, ``poradovnik broker config`` bridges the branch's broker to the
    city's, and the hub sends its history to the city (docs/city.md).
    """

    host: Annotated[str | None, AfterValidator(_check_optional_host)] = None
    """Host name or address of the city's broker; none means this branch is no part of a
    city."""

    port: int = Field(default=8883, ge=1, le=65535)
    """TCP port of the city's broker: 8883 with TLS, 1883 without."""

    username: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[^\s:]+$")
    """This branch's account at the city's broker (``poradovnik city branch add`` prints
    it, usually ``branch-<site>``)."""

    password: Annotated[SecretStr | None, AfterValidator(_check_password)] = None
    """The branch account's password; never printed or logged. At least 12 characters."""

    tls: bool = True
    """Whether the bridge talks to the city's broker over TLS (it checks the broker's
    certificate and host name; there is no insecure mode)."""

    cafile: Path | None = None
    """CA certificate (PEM) to check the city broker's certificate with; none means the
    system's CAs. A relative path is relative to the settings file."""

    certfile: Path | None = None
    """A client certificate (PEM) for the bridge, when the city's broker asks for one."""

    keyfile: Path | None = None
    """The client certificate's private key (PEM)."""

    catalogue: bool = False
    """Whether this branch takes the city's service catalogue: names, ticket prefixes
    and hours of the services the city defines (what the branch's admin changed is kept)."""

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.host is None:
            return self
        if self.username is None or self.password is None:
            raise ValueError(
                "host needs username and password (the branch's account at the city's broker)"
            )
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("certfile and keyfile go together (the bridge's client certificate)")
        if not self.tls and (self.cafile or self.certfile):
            raise ValueError("cafile, certfile and keyfile need tls = true")
        return self

    @property
    def enabled(self) -> bool:
        """Whether this branch is linked to a city."""
        return self.host is not None


class QueueSettings(Section):
    """``[queue]``: the hub's queue policy (hub only)."""

    max_calls: int = Field(default=3, ge=1)
    """A ticket is called at most this many times (the call and its recalls); a further
    recall marks it no-show."""

    transfer_keeps_arrival: bool = True
    """Whether a ticket transferred to another service keeps its place by its original
    arrival time (true) or joins the end of the other queue (false)."""

    service_time_window: int = Field(default=20, ge=1)
    """How many recent visits per service the wait estimate averages."""

    cut_off_margin_min: int = Field(default=5, ge=0, le=240)
    """A service stops issuing walk-in tickets for the rest of its opening span when a new
    ticket would be called later than this many minutes before the span closes (judged
    from the wait estimate); services open always never stop."""

    max_kiosk_blocks: int = Field(default=2, ge=1, le=20)
    """How many blocks of numbers for offline issuing one kiosk may hold per service and
    day while any of their numbers has not come back to the hub as a ticket. A kiosk asks
    for a new block when its current one runs low, so 2 lets it always have one ready; a
    further request is refused (``too_many_blocks``), so no kiosk can reserve every
    number of a service."""

    checkin_early_min: int = Field(default=30, ge=0, le=24 * 60)
    """How many minutes before its slot a citizen with a booking may check in at a kiosk,
    but not before the slot's day; earlier, the kiosk says when check-in opens
    (``too_early``)."""

    checkin_grace_min: int = Field(default=10, ge=0, le=24 * 60)
    """How many minutes after its slot starts a booking may still be checked in. Later the
    kiosk offers an ordinary ticket instead (``too_late``), and a booking nobody checked
    in by then is marked a no-show."""

    appointment_call_window_min: int = Field(default=2, ge=0, le=120)
    """How many minutes before its slot a checked-in appointment starts being called ahead
    of walk-ins. Until then it waits as a walk-in who arrived at the slot's start."""

    appointment_share: float = Field(default=0.5, ge=0.0, le=1.0)
    """While a walk-in has waited longer than ``[web] target_wait_min``, the largest share
    of the office's recent calls that may go to appointments (0.5: every other call), so
    walk-ins are never starved by a day full of bookings."""

    appointment_share_window: int = Field(default=10, ge=1, le=1000)
    """How many of the office's most recent calls ``appointment_share`` is measured over."""


class CitySettings(Section):
    """``[city]``: the city's server, which sees every office of the city (city only).

    The rest of its web server's limits (workers, cookies, proxies, sign-in limits) are
    those of ``[web]``; the city's own Mosquitto is configured from ``[broker]``.
    """

    name: str = Field(default="Mesto", min_length=1, max_length=80)
    """The city's name as its pages show it."""

    database_url: Annotated[str | None, AfterValidator(_check_city_database_url)] = Field(
        default=None, repr=False
    )
    """SQLAlchemy URL of the city's PostgreSQL database (SQLite is refused), e.g.
    postgresql+psycopg://city@db.example/poradovnik_city. Several servers for failover:
    ...?host=db1:5432&host=db2:5432&target_session_attrs=read-write. Required."""

    mqtt_host: str = Field(default="127.0.0.1", min_length=1)
    """Host name or address of the city's MQTT broker, which every branch bridges to."""

    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    """TCP port of the city's broker: 1883 plain, usually 8883 with TLS."""

    mqtt_username: str = Field(default="city", min_length=1, max_length=64)
    """The city consumer's account on the city's broker (``poradovnik city
    broker-config`` writes it with the password below)."""

    mqtt_password: Annotated[SecretStr | None, AfterValidator(_check_password)] = None
    """The consumer's broker password; never printed or logged. At least 12 characters."""

    mqtt_tls: bool = False
    """Whether the consumer talks to the city's broker over TLS."""

    uplink_host: Annotated[str, AfterValidator(_check_host_name)] | None = None
    """The city broker's host name as the branches reach it, written into the [uplink]
    section ``poradovnik city branch add`` prints; none: public_url's host name, else
    mqtt_host."""

    mqtt_ca_file: Path | None = None
    """CA certificate (PEM) to check the city broker's certificate with; none means the
    system's CAs. A relative path is relative to the settings file."""

    web_host: str = Field(default="127.0.0.1", min_length=1)
    """Address the city's web pages listen on; 0.0.0.0 for every network interface."""

    web_port: int = Field(default=8090, ge=1, le=65535)
    """TCP port the city's web pages listen on."""

    public_url: Annotated[str | None, AfterValidator(_check_public_url)] = None
    """The city portal's address as citizens reach it, e.g. https://poradovnik.kosice.sk.
    None: the address each request came in on."""

    languages: Annotated[
        tuple[Language, ...], Field(min_length=1), AfterValidator(_check_languages)
    ] = LANGUAGES
    """Languages of the city's pages, from sk, cs, uk and en; the first is the default."""

    session_expiry_h: int = Field(default=7 * 24, ge=0, le=90 * 24)
    """How long, in hours, the city's broker keeps the consumer's session (the branches'
    history sent meanwhile) while the consumer is away; 0: none (the branches resend)."""

    backlog: int = Field(default=1000, ge=10, le=100_000)
    """History batches held in memory while the database is slow or away; the next wait
    in the city broker (the consumer holds back their MQTT acknowledgements meanwhile)."""

    reconnect_max_s: float = Field(default=30.0, ge=0.5, le=600.0)
    """The longest pause between attempts to reach the database after it failed."""

    @property
    def mqtt(self) -> MqttSettings:
        """The consumer's login to the city's broker, as every MQTT connection takes it."""
        return MqttSettings(
            host=self.mqtt_host,
            port=self.mqtt_port,
            username=self.mqtt_username,
            password=self.mqtt_password,
            tls=self.mqtt_tls,
            ca_file=self.mqtt_ca_file,
        )


class LoggingSettings(Section):
    """``[logging]``: how much the device writes to its log."""

    level: Annotated[LogLevel, BeforeValidator(_strip_upper)] = "INFO"
    """Lowest level logged: DEBUG, INFO, WARNING or ERROR."""


class DeviceSettings(Section):
    """``[device]``: this device among the office's devices (kiosk, display, counter)."""

    id: Slug = Field(default_factory=_host_slug)
    """Short name of this device, unique within the office; it goes into MQTT topics. The
    default is the host name, lowercased."""


_LOADING: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar("_LOADING", default=())
"""The sources :func:`load_settings` has built for the :class:`Settings` it is making.

``settings_customise_sources`` is a class method that pydantic-settings calls with no
arguments of the caller's, so the file and environment of this one load reach it here.
"""


class Settings(BaseSettings):
    """Everything one device is configured with; read it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=_ENV_DELIMITER,
        env_nested_max_split=1,  # PORADOVNIK_<SECTION>__<KEY>: no deeper
        case_sensitive=False,
    )

    role: Annotated[Role, BeforeValidator(_strip_lower)]
    """What this device is: hub, kiosk, display or counter; city for the city's server."""

    site: SiteSettings = SiteSettings()
    """The office this device belongs to."""

    mqtt: MqttSettings = MqttSettings()
    """The MQTT broker."""

    database: DatabaseSettings = DatabaseSettings()
    """The hub's database."""

    web: WebSettings = WebSettings()
    """The hub's web server."""

    data: DataSettings = DataSettings()
    """Where the device keeps its state."""

    broker: BrokerSettings = BrokerSettings()
    """The office's broker, on the hub."""

    queue: QueueSettings = QueueSettings()
    """The hub's queue policy."""

    uplink: UplinkSettings = UplinkSettings()
    """The branch's link to the city."""

    logging: LoggingSettings = LoggingSettings()
    """Logging."""

    retention: RetentionSettings = RetentionSettings()
    """How long the hub keeps its records."""

    backup: BackupSettings = BackupSettings()
    """The hub's nightly backups."""

    mail: MailSettings = MailSettings()
    """The SMTP server the hub sends e-mail through."""

    alerts: AlertSettings = AlertSettings()
    """E-mail alerts to the office's IT."""

    notify: NotifySettings = NotifySettings()
    """Telling citizens that their turn is near."""

    device: DeviceSettings = Field(default_factory=DeviceSettings)
    """This device among the office's devices."""

    kiosk: KioskSettings = KioskSettings()
    """A ticket kiosk's screen and printer."""

    display: DisplaySettings = DisplaySettings()
    """A lobby display's screen, sound and LED boards."""

    counter: CounterSettings = CounterSettings()
    """A counter panel's buttons and lights."""

    city: CitySettings = CitySettings()
    """The city's server."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment, the file and the defaults while :func:`load_settings` reads them.

        Otherwise only what the caller gives: ``Settings(role="hub")`` in a test never
        picks up the developer's environment.
        """
        return _LOADING.get() or (init_settings,)

    @property
    def database_url(self) -> str:
        """The hub's database URL: ``[database] url``, else SQLite in ``[data] dir``."""
        if self.database.url is not None:
            return self.database.url
        return f"sqlite:///{(self.data.dir / 'hub.sqlite3').as_posix()}"

    @property
    def backup_dir(self) -> Path:
        """Where the hub's backups go: ``[backup] dir``, else ``backups`` in ``[data] dir``."""
        return self.backup.dir if self.backup.dir is not None else self.data.dir / "backups"


class SettingsError(Exception):
    """The settings cannot be used; ``str()`` is a message for people, one problem a line."""

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        """Each problem, as ``<file or environment VAR>: [section] key: what is wrong``."""
        super().__init__("\n".join(self.problems))


def resolve_config_path(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> Path:
    """Say which settings file to read: *path*, else ``$PORADOVNIK_CONFIG``, else the default."""
    if path is not None:
        return path
    environ = os.environ if env is None else env
    named = environ.get(CONFIG_ENV_VAR, "")
    return Path(named) if named else DEFAULT_CONFIG_PATH


def redact_url(url: str) -> str:
    """Hide the password in a URL such as ``postgresql://user:secret@host/db``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", url)


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    require_file: bool = True,
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Read and check a device's settings: *defaults*, then the file, then the environment.

    *path* is the settings file; ``None`` means ``$PORADOVNIK_CONFIG``, else
    :data:`DEFAULT_CONFIG_PATH`. *env* stands in for ``os.environ``. With
    ``require_file=False`` a missing file at the default location is not an error (the
    demo runs without one); a file named by *path* or ``PORADOVNIK_CONFIG`` must exist
    all the same. *defaults* are values (nested like the file) below the file's, such as
    the demo's own data directory.

    Raises :class:`SettingsError` with every problem found.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    named = path is not None or bool(environ.get(CONFIG_ENV_VAR))
    file = resolve_config_path(path, env=environ)

    environment = _EnvSource(Settings, environ)
    toml = _FileSource(Settings, file, required=require_file or named)
    builtin = InitSettingsSource(Settings, _with_absolute_paths(defaults or {}, Path.cwd()))
    token = _LOADING.set((environment, toml, builtin))
    try:
        settings = Settings()
    except ValidationError as exc:
        origins = _origins(
            [("built-in default", builtin.init_kwargs), (str(file), toml.init_kwargs)]
        )
        origins.update(environment.origins)
        fallback = str(file) if toml.found else f"{file} (not found)"
        raise SettingsError([*environment.problems, *_problems(exc, origins, fallback)]) from None
    finally:
        _LOADING.reset(token)
    if environment.problems:
        raise SettingsError(environment.problems)
    return settings


def settings_warnings(settings: Settings) -> list[str]:
    """What in ``settings`` is allowed but probably wrong, one sentence each.

    ``poradovnik check-config`` prints them as warnings; none stops a device.
    """
    warnings = []
    if settings.alerts.to and not settings.mail.enabled:
        warnings.append(
            "[alerts] to is set, but [mail] host is not: no alert e-mail is sent until the "
            "SMTP server is set"
        )
    username = settings.mqtt.username
    if settings.role != "hub" and username is not None and username != settings.device.id:
        warnings.append(
            f"[device] id {settings.device.id!r} differs from [mqtt] username {username!r}: "
            "the broker lets an account use only the topics of the device id it was made "
            "for (poradovnik device add gives both the same name), so it may refuse "
            "everything this device sends"
        )
    if settings.uplink.enabled and settings.role != "hub":
        warnings.append(
            f"[uplink] is set on a {settings.role}: only the hub links an office to the city"
        )
    if settings.uplink.enabled and not settings.uplink.tls:
        warnings.append(
            "[uplink] tls is false: the branch's history, its queue state and the branch "
            "account's password cross the network to the city in clear"
        )
    return warnings


_Loc = tuple[str | int, ...]

_SECTIONS: dict[str, type[BaseModel]] = {
    name: info.annotation
    for name, info in Settings.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
}
_TOP_LEVEL = tuple(name for name in Settings.model_fields if name not in _SECTIONS)


def _annotation_types(annotation: Any) -> tuple[Any, ...]:
    """The annotation and, for ``X | None`` and ``Annotated[...]``, the types inside it."""
    if typing.get_origin(annotation) is Annotated:
        return _annotation_types(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(t for arg in typing.get_args(annotation) for t in _annotation_types(arg))
    return (annotation,)


def _is_of_type(annotation: Any, kind: Any) -> bool:
    return any(t is kind or typing.get_origin(t) is kind for t in _annotation_types(annotation))


def _fields_of_type(kind: Any) -> frozenset[tuple[str, str]]:
    return frozenset(
        (section, name)
        for section, model in _SECTIONS.items()
        for name, info in model.model_fields.items()
        if _is_of_type(info.annotation, kind)
    )


_PATH_FIELDS = _fields_of_type(Path)
_LIST_FIELDS = _fields_of_type(tuple)
# Values never repeated in messages: passwords, and URLs that may hold one.
_SECRET_FIELDS = _fields_of_type(SecretStr) | {("database", "url"), ("city", "database_url")}


def _with_absolute_paths(data: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """*data* with each relative path of a path key taken relative to *base*."""
    return {
        key: {name: _absolute(key, name, item, base) for name, item in value.items()}
        if isinstance(value, Mapping) and key in _SECTIONS
        else value
        for key, value in data.items()
    }


def _absolute(section: str, name: str, value: Any, base: Path) -> Any:
    if (section, name) in _PATH_FIELDS and isinstance(value, str | Path):
        path = Path(value)
        return path if path.is_absolute() else base / path
    return value


class _FileSource(TomlConfigSettingsSource):
    """pydantic-settings' TOML source for one settings file, failing with messages that name it.

    It reads the file itself: the library's reader skips a file that is missing or not a
    regular one and lets other errors out as they are, where a device needs to be told
    why its file cannot be used. Relative paths in the file are relative to its directory.
    """

    def __init__(self, settings_cls: type[BaseSettings], file: Path, *, required: bool) -> None:
        self.file = file
        self.required = required
        self.found = False
        """Whether the file was there; a missing one not required gives no values."""
        super().__init__(settings_cls, toml_file=file)

    def _read_files(self, files: Any, deep_merge: bool = False) -> dict[str, Any]:
        file = self.file
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            if not self.required:
                return {}
            msg = (
                f"{file}: settings file not found; name another one with --config FILE or "
                f"{CONFIG_ENV_VAR} (commented examples: docs/config/*.toml)"
            )
            raise SettingsError([msg]) from None
        except IsADirectoryError:
            raise SettingsError([f"{file}: is a directory, not a settings file"]) from None
        except OSError as exc:
            problem = exc.strerror or str(exc)
            raise SettingsError([f"{file}: cannot read the settings file: {problem}"]) from None
        self.found = True
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            msg = f"{file}: not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8"
            raise SettingsError([msg]) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError([f"{file}: TOML syntax error: {exc}"]) from None
        return _with_absolute_paths(data, file.absolute().parent)


class _EnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping, remembering each variable.

    Prefix, ``__`` between section and key, and matching names in any case come from
    :class:`Settings`' configuration. Before the library reads the variables, each name
    is checked: one that cannot be right (an unknown section, a whole section, a list
    that is not one, one underscore for two) becomes a problem of its own and is not read.
    Relative paths are relative to the working directory.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []
        """What is wrong with the variables, beyond their values."""
        self.origins: dict[_Loc, str] = {}
        """``environment VAR`` for each section and key a variable sets."""
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        """The usable ``PORADOVNIK_*`` variables of the mapping; empty ones are not set."""
        usable: dict[str, str | None] = {}
        for var in sorted(self.environ):
            value = self.environ[var]
            if not var.upper().startswith(ENV_PREFIX) or value == "":
                continue
            rest = var[len(ENV_PREFIX) :].lower()
            problem = _env_problem(rest, value)
            if problem is not None:
                self.problems.append(f"environment {var}: {problem}")
                continue
            usable[var.lower()] = value
            loc: _Loc = tuple(rest.split(_ENV_DELIMITER, 1))
            self.origins[loc[:1]] = self.origins[loc] = f"environment {var}"
        return usable

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        """A list is JSON or ``sk,en``; other values go to validation as they are.

        A sub-table such as ``[kiosk.printer]`` is not set from the environment.
        """
        if not _is_of_type(field.annotation, tuple):
            return value
        if value.lstrip().startswith("["):
            return super().decode_complex_value(field_name, field, value)
        return [part.strip() for part in value.split(",") if part.strip()]

    def __call__(self) -> dict[str, Any]:
        return _with_absolute_paths(super().__call__(), Path.cwd())


def _env_problem(rest: str, value: str) -> str | None:
    """What is wrong with ``PORADOVNIK_<rest>`` before its value is read, if anything."""
    if _ENV_DELIMITER in rest:
        section, name = rest.split(_ENV_DELIMITER, 1)
        if section not in _SECTIONS:
            return f"[{section}]: unknown section{_did_you_mean(section, _SECTIONS)}"
        if (section, name) in _LIST_FIELDS and value.lstrip().startswith("["):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if not isinstance(parsed, list):
                return (
                    f"[{section}] {name}: not a list; write it as sk,en "
                    f'or as JSON ["sk", "en"] (got {_show(value)})'
                )
        return None
    if rest in _SECTIONS:
        example = f"{ENV_PREFIX}{rest.upper()}{_ENV_DELIMITER}<KEY>"
        return (
            f"[{rest}]: a whole section cannot be set at once; set its keys one by one as {example}"
        )
    # PORADOVNIK_WEB_PORT almost surely meant PORADOVNIK_WEB__PORT.
    for section, model in _SECTIONS.items():
        name = rest.removeprefix(f"{section}_")
        if name != rest and name in model.model_fields:
            meant = f"{ENV_PREFIX}{section.upper()}{_ENV_DELIMITER}{name.upper()}"
            return f"not a settings variable; did you mean {meant} (two underscores)?"
    return None


def _origins(layers: list[tuple[str, Mapping[str, Any]]]) -> dict[_Loc, str]:
    """Which layer (a file, the defaults) set each section and key; a later layer wins."""
    origins: dict[_Loc, str] = {}
    for origin, data in layers:
        for key, value in data.items():
            origins[(key,)] = origin
            if isinstance(value, Mapping):
                origins.update(dict.fromkeys([(key, name) for name in value], origin))
    return origins


def _problems(exc: ValidationError, origins: Mapping[_Loc, str], fallback: str) -> list[str]:
    """One line per error, naming who set the value: by its key, else by its section.

    *fallback* is named for what nobody set, such as a missing ``role``.
    """
    errors = exc.errors()
    # A list with a bad item also "has too few items": keep the specific one.
    locs = [tuple(error["loc"]) for error in errors]
    problems = []
    for error, loc in zip(errors, locs, strict=True):
        if any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs):
            continue
        heads = (loc[:end] for end in range(len(loc), 0, -1))
        origin = next((origins[head] for head in heads if head in origins), fallback)
        problems.append(f"{origin}: {_describe(error)}")
    return problems


def _describe(error: Any) -> str:
    loc: _Loc = tuple(error["loc"])
    kind: str = error["type"]
    message: str = error["msg"].removeprefix("Value error, ")
    show_input = (
        kind not in {"missing", "extra_forbidden", "model_type", "model_attributes_type"}
        and tuple(loc[:2]) not in _SECRET_FIELDS
        # A whole section's input would show the secrets in it.
        and not (len(loc) == 1 and any(section == loc[0] for section, _ in _SECRET_FIELDS))
    )
    if kind == "missing" and loc == ("role",):
        message = (
            'missing; every settings file says what the device is: role = "hub", '
            '"kiosk", "display", "counter" or "city", before the first [section]'
        )
    elif kind == "missing":
        message = "missing"
    elif kind == "extra_forbidden":
        message = _unknown(loc, error.get("input"))
    elif kind in {"model_type", "model_attributes_type"} and len(loc) == 1:
        message = f"must be a section (a [{loc[0]}] table), not a single value"
    got = f" (got {_show(error.get('input'))})" if show_input else ""
    table = kind == "extra_forbidden" and isinstance(error.get("input"), Mapping)
    return f"{_key(loc, table=table)}: {message}{got}"


def _unknown(loc: _Loc, value: Any) -> str:
    name = str(loc[-1])
    if len(loc) == 1:
        if isinstance(value, Mapping):
            return "unknown section" + _did_you_mean(name, _SECTIONS)
        holders = [f"[{s}]" for s, model in _SECTIONS.items() if name in model.model_fields]
        if holders:
            return (
                f"unknown top-level key; did you mean it under {' or '.join(holders)}? "
                "(keys above the first [section] header are top-level)"
            )
        return "unknown key" + _did_you_mean(name, _TOP_LEVEL)
    model = _SECTIONS.get(str(loc[0]))
    return "unknown key" + (_did_you_mean(name, model.model_fields) if model else "")


def _did_you_mean(name: str, choices: typing.Iterable[str]) -> str:
    close = get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _key(loc: _Loc, *, table: bool = False) -> str:
    """Name a key the way the file writes it: ``role``, ``[mqtt] port``, ``[site] languages``.

    An item of a list is named by its place counted from 1: ``[site] languages, item 2``.
    """
    if not loc:
        return "settings"
    head = str(loc[0])
    if len(loc) == 1:
        return f"[{head}]" if table or head in _SECTIONS else head
    rest = "".join(
        f", item {part + 1}" if isinstance(part, int) else f".{part}" for part in loc[2:]
    )
    return f"[{head}] {loc[1]}{rest}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
