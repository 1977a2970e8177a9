"""What the admin and clerk pages say when the hub refuses: one text per refusal code.

The queue, the booking book and the other layers refuse with an English message (for
the log and the command line) and a stable ``code`` (:class:`~hub.service.QueueError`,
:class:`~common.errors.PoradovnikError`); where one code covers several reasons, a
``detail`` names the reason, and ``params`` the values its text names. The pages show
:func:`refusal_text`: the text of ``<code>.<detail>`` (else of ``<code>``) in the page's
language, with the values put in. The English message goes to the log; a code without
a text (a bug: ``tests/hub/test_web_refusals.py`` checks every code raised has one)
shows a general text rather than English.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from flask_babel import LazyString, lazy_gettext

from common.errors import Params, PoradovnikError
from hub.service import CLOSURE_HORIZON_DAYS, QueueError

log = logging.getLogger(__name__)

_SEAT_TABLE = lazy_gettext(
    "%(part)s is not like Mon 08-12 3 or Tue-Fri 13-15 2 (weekdays Mon to Sun, hours "
    "0-24 in order, at most 50 seats)."
)
_NO_REMOTE = lazy_gettext("This service takes no remote tickets now.")

REFUSALS: Final[Mapping[str, LazyString]] = {
    # The queue (hub.engine, hub.service) and the clerk's panel.
    "already_open": lazy_gettext("The counter is already open."),
    "already_paused": lazy_gettext("The counter is already paused."),
    "cancelled": lazy_gettext("This booking was cancelled."),
    "checked_in": lazy_gettext("This ticket or booking is already checked in."),
    "counter_busy": lazy_gettext("Finish the current ticket first."),
    "cut_off": lazy_gettext(
        "The service takes no more tickets today: those waiting fill the time until it closes."
    ),
    "daily_limit": lazy_gettext("The service has issued all its tickets for today."),
    "day_changed": lazy_gettext("A new business day has begun; please try again."),
    "duplicate_code": lazy_gettext("A live remote ticket already has this code."),
    "duplicate_prefix": lazy_gettext(
        "The prefix %(prefix)s is already used by service %(service)s."
    ),
    "duplicate_ticket": lazy_gettext("This ticket is already recorded."),
    "invalid_closure": lazy_gettext(
        "A closure is entered for a day from today up to %(days)s days ahead."
    ),
    "invalid_number": lazy_gettext("This number was not reserved for the kiosk."),
    "invalid_prefix": lazy_gettext("The ticket prefix must be one letter."),
    "invalid_remote": lazy_gettext("The remote tickets' rules must not be negative."),
    "invalid_size": lazy_gettext("A block of numbers is empty or too large."),
    "invalid_transition": lazy_gettext("This is not possible for the current ticket now."),
    "invalid_weight": lazy_gettext("A service's weight must be positive."),
    "missing_service": lazy_gettext("Choose the service to transfer the ticket to."),
    "next_guard": lazy_gettext(
        "%(number)s was called just now. Wait a few seconds before calling the next "
        "citizen, so that nobody is skipped."
    ),
    "no_ticket": lazy_gettext("There is no ticket at this counter."),
    "not_parked": lazy_gettext("That ticket is no longer parked."),
    "not_reserved": lazy_gettext("This number was not reserved for the kiosk."),
    "numbers_exhausted": lazy_gettext("The service has issued every number of today."),
    "outside_hours": lazy_gettext("The service is closed now."),
    "priority_not_offered": lazy_gettext("This service issues no priority tickets."),
    "remote_closed": _NO_REMOTE,
    "remote_disabled": _NO_REMOTE,
    "remote_quota": lazy_gettext("This service takes no more remote tickets today."),
    "remote_ticket": lazy_gettext("A remote ticket cannot be given priority."),
    "same_priority": lazy_gettext("The ticket already has this priority."),
    "same_service": lazy_gettext("The ticket already waits for that service."),
    "service_closed": lazy_gettext("The service is switched off."),
    "stale_day": lazy_gettext("The press is from an earlier day; press again."),
    "stale_page": lazy_gettext(
        "The counter changed meanwhile (another device acted); check the ticket and retry."
    ),
    "too_early": lazy_gettext("It is too early to check in this booking."),
    "too_late": lazy_gettext("It is too late for this booking: its time has passed."),
    "too_many_blocks": lazy_gettext("The kiosk holds too many unused blocks of numbers."),
    "unknown_action": lazy_gettext("This action does not exist."),
    "unknown_booking": lazy_gettext("No booking or remote ticket has this code."),
    "unknown_counter": lazy_gettext("This counter no longer exists."),
    "unknown_eservice": lazy_gettext("Tick only the e-services listed; reload the page."),
    "unknown_service": lazy_gettext("That service does not exist (any more)."),
    "unknown_service.counter": lazy_gettext(
        "A counter serves only services that exist; there is no %(service)s."
    ),
    "unknown_ticket": lazy_gettext("That ticket is finished or was never issued."),
    # Appointments (hub.appointments).
    "hold_lapsed": lazy_gettext("The slot was kept too long; choose it again."),
    "invalid": lazy_gettext("Some of the values are not valid."),
    "invalid.email": lazy_gettext("The e-mail address is not valid."),
    "invalid.lang": lazy_gettext("The language must be one of %(languages)s."),
    "invalid.name": lazy_gettext("Give a name or initials of 1-%(max)s characters."),
    "invalid.rules": lazy_gettext("Each value must be from %(low)s to %(high)s."),
    "invalid.seat_table": _SEAT_TABLE,
    "invalid.seat_table_long": lazy_gettext("The seat table may have at most %(max)s characters."),
    "no_such_slot": lazy_gettext(
        "There is no bookable slot at this time; choose one from the list."
    ),
    "not_bookable": lazy_gettext("This service takes no appointments."),
    "out_of_range": lazy_gettext("This day cannot be booked."),
    "slot_full": lazy_gettext("The slot was taken meanwhile; choose another."),
    "too_many_bookings": lazy_gettext("This person already has as many bookings as one may."),
    "unknown_code": lazy_gettext("No active booking has this code."),
    # Opening hours as the admin types them (hub.web.admin.parse_hours).
    "invalid_hours": lazy_gettext(
        "Give the hours as always, or like Mon 08:00-12:00 13:00-15:00; Tue 08:00-12:00."
    ),
    "invalid_hours.day": lazy_gettext("%(part)s is not a weekday (%(days)s)."),
    "invalid_hours.span": lazy_gettext("%(part)s is not a span like 08:00-12:00."),
    "invalid_hours.time": lazy_gettext("%(part)s is not a time of day."),
    "invalid_hours.order": lazy_gettext("%(part)s ends before it starts."),
    "invalid_hours.empty": lazy_gettext("%(part)s has no opening span."),
    # Users and API tokens (hub.users, hub.web.admin).
    "invalid_name": lazy_gettext(
        "%(name)s: use 1-64 letters, digits and . _ @ - (starting with a letter or digit)."
    ),
    "invalid_role": lazy_gettext("Choose a role from the list."),
    "invalid_scopes": lazy_gettext("Tick at least one thing the token may do."),
    "last_admin": lazy_gettext("%(name)s is the only active admin; make another admin first."),
    "password_needed": lazy_gettext("A new user needs a password."),
    "short_password": lazy_gettext("The password must have at least %(min)s characters."),
    # The portal's branding (hub.siteconfig).
    "accent_too_light": lazy_gettext("The accent colour is too light for white text."),
    "duplicate_language": lazy_gettext("A language is listed twice."),
    "footer_too_long": lazy_gettext("The footer may have at most %(max)s characters."),
    "invalid_accent_color": lazy_gettext("The accent colour must look like #0b5394."),
    "invalid_languages": lazy_gettext("Choose languages from %(languages)s."),
    "invalid_office_name": lazy_gettext("The office name must have 1-%(max)s characters."),
    # E-service sign-ups (hub.signups).
    "duplicate_eservice": lazy_gettext("An e-service is listed twice."),
    "invalid_eservice_name": lazy_gettext("An e-service name has 1-%(max)s characters."),
    "too_many_eservices": lazy_gettext("List at most %(max)s e-services."),
    # Pairing devices (hub.provisioning).
    "broker_config": lazy_gettext(
        "The device's account is saved, but the broker's files could not be written; "
        "see the hub's log."
    ),
    "broker_unreachable": lazy_gettext(
        "The hub cannot log in to its broker; is Mosquitto running?"
    ),
    "invalid_account": lazy_gettext(
        "The device's account cannot be made as asked; check the device id and the counters."
    ),
    "invalid_pairing_code": lazy_gettext(
        "This is not a pairing code: it has %(digits)s digits, like 483 127."
    ),
    "no_pairing_request": lazy_gettext(
        "No device asks to be paired with this code; check the code on the device's "
        "screen, and that the device reaches this hub's broker."
    ),
    "not_pairable": lazy_gettext("Only kiosks, displays and counter panels are paired."),
    "pairing_code_twice": lazy_gettext(
        "Two devices ask with this code; restart the device you want to pair (it shows "
        "a new code) and enter that one."
    ),
    "reserved_device": lazy_gettext("%(device)s is reserved; choose another device id."),
    "role_mismatch": lazy_gettext(
        "The device with this code is set up as a %(role)s; pair it as one, or change "
        "its boot file and restart it."
    ),
    # The store (hub.store), when the database refuses or is away.
    "duplicate_number": lazy_gettext("Another device took the same number; try again."),
    "integrity": lazy_gettext("The change does not fit what is stored; nothing was saved."),
    "unavailable": lazy_gettext("The database cannot be reached now; try again in a moment."),
    "unknown_revision": lazy_gettext("The database is of a newer version than this hub."),
    "unknown_row": lazy_gettext("What this names is no longer stored; reload the page."),
    # Any other refusal.
    "refused": lazy_gettext("The hub refused this; check the values and try again."),
}
"""The text of each refusal code (``<code>.<detail>`` for a finer reason), with
``%(name)s`` where the refusal's ``params`` (or :data:`DEFAULTS`) put a value in."""

DEFAULTS: Final[Mapping[str, Params]] = {
    "invalid_closure": {"days": CLOSURE_HORIZON_DAYS},
}
"""Values a text names that are the office's rules rather than the refusal's."""


def refusal_text(exc: QueueError | PoradovnikError) -> str:
    """What the page tells about ``exc``, in the page's language; the English is logged."""
    code, detail = exc.code, exc.detail
    log.info("refused (%s%s): %s", code, f".{detail}" if detail else "", exc)
    keys = [f"{code}.{detail}", code] if detail else [code]
    for key in keys:
        text = REFUSALS.get(key)
        if text is None:
            continue
        try:
            return str(text) % {**DEFAULTS.get(key, {}), **exc.params}
        except (KeyError, TypeError, ValueError):
            log.error("the text of refusal %s does not fit its values %r", key, exc.params)
    if code not in REFUSALS:
        log.error("refusal %s has no text for the pages", code)
    return str(REFUSALS["refused"])
