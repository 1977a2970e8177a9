"""The citizen's e-mail about their booking: booked, moved or cancelled.

When a citizen gave an e-mail address, each booking made (on the portal, through the
API, or by the admin for a phone caller), moved or cancelled is confirmed to it in
the citizen's language: the service, the time, the place and the booking code, with
the link to the booking's page (to cancel or move it) and its calendar file (the
portal's ``.ics``) attached. A cancellation carries neither.

The message is built in the request that changed the booking and handed to the
:class:`~hub.mail.Mailer`, which sends it from a thread of its own: no request waits
for the SMTP server.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Final

from flask import Flask, has_request_context, request
from flask_babel import force_locale
from flask_babel import gettext as _

from hub.mail import Mailer
from hub.model import Appointment
from hub.web.booking import booking_calendar, ics_filename
from hub.web.context import hub

log = logging.getLogger(__name__)

WHAT: Final = ("booked", "moved", "cancelled")
"""What happened to a booking that the citizen is told of."""


class BookingMail:
    """Mails the citizen of each booking changed (a listener of the app's appointment book)."""

    def __init__(self, app: Flask, mailer: Mailer) -> None:
        self.app = app
        self.mailer = mailer

    def changed(self, what: str, found: Appointment) -> None:
        """Queue the e-mail about ``found`` (``booked``, ``moved`` or ``cancelled``)."""
        if found.email is None or what not in WHAT:
            return
        public = hub(self.app).settings.web.public_url
        base = public or (request.host_url if has_request_context() else None)
        with self.app.app_context(), force_locale(found.lang):
            message = self.message(what, found, base.rstrip("/") if base else None)
        if not self.mailer.send(message):
            log.warning("the e-mail about booking %s (%s) was not queued", found.code, what)

    def message(self, what: str, found: Appointment, base: str | None) -> EmailMessage:
        """The e-mail about ``found`` in the current language; ``base``: the portal's URL."""
        current = hub(self.app)
        service = current.queue.service(found.service)
        service_name = service.name(found.lang) if service is not None else found.service
        office = current.config.branding().office_name
        when = f"{found.starts_at.astimezone(current.queue.timezone):%d.%m.%Y %H:%M}"
        subjects = {
            "booked": _("Your appointment: %(service)s, %(when)s", service=service_name, when=when),
            "moved": _("Appointment moved: %(service)s, %(when)s", service=service_name, when=when),
            "cancelled": _(
                "Appointment cancelled: %(service)s, %(when)s", service=service_name, when=when
            ),
        }
        news = {
            "booked": _("your appointment is booked."),
            "moved": _("your appointment has been moved."),
            "cancelled": _("your appointment has been cancelled."),
        }
        lines = [
            _("Hello %(name)s,", name=found.name),
            news[what],
            "",
            _("Service: %(service)s", service=service_name),
            _("Time: %(when)s", when=when),
            _("Place: %(office)s", office=office),
            _("Booking code: %(code)s", code=found.code),
        ]
        if what != "cancelled":
            lines += [
                "",
                _(
                    "When you come, scan the booking's QR code at the kiosk"
                    " or type the booking code there."
                ),
            ]
            if base is not None:
                url = f"{base}/appointment/{found.code}"
                lines.append(_("To see, cancel or move the booking: %(url)s", url=url))
        lines += ["", office]
        message = EmailMessage()
        message["Subject"] = subjects[what]
        message["To"] = found.email
        message["Content-Language"] = found.lang
        message.set_content("\n".join(str(line) for line in lines))
        if what != "cancelled":
            message.add_attachment(
                booking_calendar(found, service_name, office),
                maintype="text",
                subtype="calendar",
                filename=ics_filename(found.code),
            )
        return message
