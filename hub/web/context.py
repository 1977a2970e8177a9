"""What the web side's views share: the hub's parts, reached from the current app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import Flask, current_app

from common.settings import Settings
from hub.appointments import AppointmentBook
from hub.audit import AdminAudit
from hub.callboard import CallBoard
from hub.eservice import EServices
from hub.feedback import Feedback
from hub.lockout import Lockout
from hub.service import QueueService
from hub.signups import SignUps
from hub.siteconfig import SiteConfig
from hub.users import ApiTokens, Users
from hub.web.live import LiveFeed

if TYPE_CHECKING:
    from hub.bridge import HubBridge
    from hub.mail import Mailer
    from hub.notify import Notices
    from hub.web.metrics import HubMetrics

EXTENSION = "poradovnik"
"""The key of the :class:`Hub` in ``app.extensions``."""


@dataclass
class Hub:
    """The hub's parts as the web side uses them."""

    settings: Settings
    queue: QueueService
    feed: LiveFeed
    """Tells live pages and page caches that the queue changed."""
    board: CallBoard
    """The calls as the lobby display shows them (for the web display page)."""
    users: Users
    tokens: ApiTokens
    eservices: EServices
    config: SiteConfig
    lockout: Lockout
    """Counts wrong PINs per reference and wrong passwords per user name."""
    appointments: AppointmentBook
    """Bookable slots and citizens' bookings."""
    feedback: Feedback
    """Citizens' ratings of their visits."""
    signups: SignUps
    """E-service registration desks and the sign-ups recorded at them."""
    audit: AdminAudit
    """The admins' changes to the set-up."""
    bridge: HubBridge | None = None
    """The MQTT bridge, for the devices' status; ``None`` in a hub without one."""
    metrics: HubMetrics | None = None
    """The figures for Prometheus (``/metrics``); ``None``: no such page."""
    mailer: Mailer | None = None
    """Sends the citizens' booking confirmations; ``None`` in a hub that sends no e-mail."""
    notices: Notices | None = None
    """Citizens' notices (push, e-mail, SMS); ``None``: the portal offers none."""
    pages: dict[str, object] = field(default_factory=dict)
    """Per-blueprint state (such as page caches), by blueprint name."""


def hub(app: Flask | None = None) -> Hub:
    """The :class:`Hub` of ``app`` (default: the current app)."""
    found: Hub = (app or current_app).extensions[EXTENSION]
    return found
