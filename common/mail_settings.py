"""The hub's ``[mail]`` (its SMTP server) and ``[alerts]`` (what the office's IT is told).

They live apart from :mod:`common.settings`, which gathers them into
:class:`~common.settings.Settings`. This module needs only pydantic.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr, ValidationInfo, field_validator

from common.section import Section

CpuPriority = Literal["idle", "low", "same"]
"""How a helper process of the hub yields the CPU (see :attr:`NotifySettings.priority`)."""

__all__ = ["AlertSettings", "CpuPriority", "EmailAddress", "MailSettings", "NotifySettings"]

_ADDRESS_RE = re.compile(r"[^@\s<>,;:\"()\[\]\\]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


def _check_address(value: str) -> str:
    if len(value) > 254 or not _ADDRESS_RE.fullmatch(value):
        msg = "must be a plain e-mail address such as 'it@kosice.sk' (no name, no brackets)"
        raise ValueError(msg)
    return value


EmailAddress = Annotated[str, AfterValidator(_check_address)]
"""A plain e-mail address, ``local@domain``: it goes into a header as it is."""

SMTPS_PORT = 465
"""The port on which SMTP servers speak TLS from the first byte (SMTPS)."""


class MailSettings(Section):
    """``[mail]``: the SMTP server the hub sends e-mail through (hub only).

    Mail is off while ``host`` is not set.
    """

    host: str | None = Field(default=None, min_length=1, max_length=253)
    """Host name or address of the SMTP server (the city's relay); none: the hub sends
    no e-mail."""

    port: int = Field(default=587, ge=1, le=65535)
    """TCP port of the SMTP server: 587 with STARTTLS, 465 with TLS from the start, 25
    for a relay on the office network."""

    sender: EmailAddress | None = Field(default=None, validate_default=True)
    """The address e-mail comes from (From:), e.g. poradovnik@kosice.sk; required with
    host."""

    username: str | None = Field(default=None, min_length=1, max_length=256)
    """User to log in to the SMTP server as; none: no login (a relay that trusts the
    hub's address)."""

    password: SecretStr | None = Field(default=None, max_length=256, validate_default=True)
    """Password of that user; never printed or logged. Better set as
    PORADOVNIK_MAIL__PASSWORD in the service's environment file."""

    starttls: bool = True
    """Switch the connection to TLS with STARTTLS before logging in and sending; the
    server's certificate is checked (see ca_file)."""

    tls: bool | None = Field(default=None, validate_default=True)
    """TLS from the first byte (SMTPS), the certificate checked (see ca_file); none: on
    port 465 only. With it, starttls does not apply."""

    ca_file: Path | None = None
    """CA certificate (PEM) to check the SMTP server's certificate with, e.g. the city's
    own CA; none means the system's CAs. A relative path is relative to the settings
    file."""

    timeout_s: float = Field(default=10.0, ge=1.0, le=120.0)
    """Seconds to wait for the SMTP server at each step before the attempt counts as
    failed (it is tried again later)."""

    @property
    def enabled(self) -> bool:
        """Whether the hub sends e-mail (a host is set)."""
        return self.host is not None

    @property
    def implicit_tls(self) -> bool:
        """Whether the connection is TLS from the first byte."""
        return self.tls if self.tls is not None else self.port == SMTPS_PORT

    @field_validator("sender")
    @classmethod
    def _sender_with_host(cls, sender: str | None, info: ValidationInfo) -> str | None:
        """A host needs the address e-mail comes from."""
        if sender is None and info.data.get("host") is not None:
            msg = "is required with host (the address e-mail comes from)"
            raise ValueError(msg)
        return sender

    @field_validator("password")
    @classmethod
    def _password_with_username(
        cls, password: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        """A login needs both."""
        if "username" in info.data and (password is None) != (info.data["username"] is None):
            msg = "set username and password both, or neither (no login)"
            raise ValueError(msg)
        return password

    @field_validator("tls")
    @classmethod
    def _login_over_tls(cls, tls: bool | None, info: ValidationInfo) -> bool | None:
        """Never a password in clear."""
        data = info.data
        implicit = tls if tls is not None else data.get("port") == SMTPS_PORT
        if data.get("username") is not None and not (implicit or data.get("starttls")):
            msg = (
                "logging in without TLS would send the password in clear; set starttls = "
                "true or tls = true"
            )
            raise ValueError(msg)
        return tls


class AlertSettings(Section):
    """``[alerts]``: e-mail to the office's IT when something needs a person (hub only).

    An alert is sent once when its cause starts (a device offline, a printer's paper
    running out or out, the data disk filling up, a failed backup), and once more when
    it ends; it needs ``[mail] host``.
    """

    to: tuple[EmailAddress, ...] = Field(default=(), max_length=20)
    """Addresses the alerts go to, e.g. ["it@kosice.sk"]; empty: no alerts."""

    offline_after_s: int = Field(default=120, ge=0, le=24 * 3600)
    """A device counts as offline once it has been offline this many seconds (a restart
    is not an alert)."""

    disk_free_min_mb: int = Field(default=1024, ge=0, le=10_000_000)
    """Alert when the disk of [data] dir has less than this many MB free; 0: never."""

    resolved: bool = True
    """Also send an e-mail when the cause of an alert has ended."""


class NotifySettings(Section):
    """``[notify]``: telling citizens that their turn is near (hub only).

    On the my-ticket page a citizen may ask for a web push, an e-mail (through
    ``[mail]``) or a text message (through ``sms_url``). The contact is kept only until
    the ticket ends and ``grace_min`` after.
    """

    enabled: bool = True
    """Whether the my-ticket page offers notifications at all."""

    ahead: int = Field(default=3, ge=1, le=50)
    """The "N people ahead of you" notice goes when this many or fewer are ahead."""

    ahead_by_service: dict[str, Annotated[int, Field(ge=1, le=50)]] = Field(
        default_factory=dict, max_length=100
    )
    """``ahead`` for single services, by service code (e.g. ``{ A = 5 }``)."""

    grace_min: int = Field(default=30, ge=1, le=24 * 60)
    """Minutes a citizen's contact is kept after the ticket ends; then it is erased."""

    stale_min: int = Field(default=10, ge=1, le=24 * 60)
    """A notice not delivered this many minutes after its cause is dropped."""

    backoff_s: list[Annotated[float, Field(gt=0, le=3600)]] = Field(
        default_factory=lambda: [2.0, 5.0, 15.0, 60.0], min_length=1, max_length=10
    )
    """Pauses before each next attempt of a notice that failed; then it is given up."""

    workers: int = Field(default=8, ge=1, le=64)
    """Notices sent at the same time."""

    priority: CpuPriority = "idle"
    """The CPU priority of the process that sends the notices, so that the clerks'
    presses go first: ``idle`` (Linux's idle scheduling class: it runs on what CPU time
    the hub, the broker and the other services leave; a press never waits for it),
    ``low`` (10 lower in ``nice``: it still takes a share of a busy CPU) or ``same``
    (the hub's)."""

    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """How long a push service or the SMS gateway may take to answer."""

    vapid_subject: str = Field(default="mailto:poradovnik@localhost", max_length=200)
    """Who push services contact about the hub's notices (``mailto:`` or ``https:``)."""

    push_hosts: list[str] = Field(
        default_factory=lambda: [
            "fcm.googleapis.com",
            "push.services.mozilla.com",
            "push.apple.com",
            "notify.windows.com",
        ],
        max_length=50,
    )
    """Push services the hub posts to (a host or its parent domain); a browser's
    subscription to any other is refused (the hub posts to no address a page names)."""

    push_allow_http: bool = False
    """Accept push services without TLS (only for a test push service on the hub)."""

    sms_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://")
    """The SMS gateway's webhook; none: no text messages. It may hold the placeholders
    of ``sms_body``."""

    sms_method: Literal["POST", "PUT", "GET"] = "POST"
    """HTTP method of the webhook."""

    sms_headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    """Headers of the webhook's request (an API key, say)."""

    sms_body: str = Field(default='{"to": "{phone}", "text": "{text}"}', max_length=4000)
    """The request's body; ``{phone}``, ``{text}``, ``{number}`` and ``{ticket}`` are
    replaced, escaped for ``sms_content_type`` (JSON string, form value, or as is)."""

    sms_content_type: str = Field(default="application/json", max_length=100)
    """The body's Content-Type."""

    def ahead_for(self, service: str) -> int:
        """The "people ahead" threshold of ``service``."""
        return self.ahead_by_service.get(service, self.ahead)
