"""Booking an appointment on the portal, without an account: ``/book`` and ``/appointment``.

A citizen picks a service, a day and a slot; the slot is *held* for them
(:class:`~hub.appointments.AppointmentBook`) while they give a name or initials and,
if they like, an e-mail address. The confirmation shows the booking code, its QR code
(what the kiosk's scanner reads, :func:`~sync_agent.protocol.booking_qr`) and a
calendar file (``.ics``). With the code they can come back to cancel or move it.

The code is the booking's only key: every page that names one counts towards
``[web] booking_code_limit`` per address, and holding or booking towards
``booking_limit``. Pages are mobile-first, work without JavaScript, and every form
carries a CSRF token.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final

import segno
from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_wtf import FlaskForm
from icalendar import Calendar
from icalendar import Event as CalendarEvent
from werkzeug.wrappers.response import Response as BaseResponse
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from hub.appointments import MAX_NAME, BookingError, Contact, Slot
from hub.model import Appointment, AppointmentState
from hub.web.context import hub
from hub.web.extensions import limiter
from hub.web.i18n import select_locale
from sync_agent.protocol import booking_qr

bp = Blueprint("booking", __name__)

BOOKING_SCOPE: Final = "booking"
"""The portal's booking form and the API share one budget per address."""

CODE_SCOPE: Final = "booking-code"
"""Pages and API calls that name a booking code share one budget per address."""

NOT_FOUND: Final = frozenset({"unknown_service", "not_bookable", "unknown_code"})
"""Refusals that mean: there is nothing here (404)."""

Page = str | BaseResponse | tuple[str, int]


def refusal_status(error: BookingError) -> int:
    """The HTTP status of a refused booking (pages and API alike)."""
    if error.code in NOT_FOUND:
        return 404
    if error.code in ("out_of_range", "no_such_slot", "invalid"):
        return 400
    return 409


def refusal_text(error: BookingError) -> str:
    """What the citizen is told about a refused booking, in their language."""
    texts = {
        "slot_full": _("Someone else has just taken this time. Please choose another."),
        "too_many_bookings": _("You already have as many bookings as one person may have."),
        "hold_lapsed": _("The time was kept for you too long. Please choose it again."),
        "too_late": _("It is too late to change this booking online; please call the office."),
        "unknown_code": _("We found no booking with this code."),
        "invalid": _("Please check the name and the e-mail address."),
    }
    return str(texts.get(error.code, _("This time cannot be booked. Please choose another.")))


def client_address() -> str:
    """The address a request came from (the last proxy's view, see ``[web] proxy_hops``)."""
    return get_remote_address()


def qr_svg(code: str) -> str:
    """The booking's QR code as inline SVG (the kiosk's scanner reads it)."""
    return str(segno.make(booking_qr(code), error="m").svg_inline(scale=5, border=2))


def parse_slot(value: str | None) -> datetime | None:
    """A slot's start from a form or query (ISO 8601 with its offset), or ``None``."""
    if not value or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_day(value: str | None) -> date | None:
    """A day from a query (``YYYY-MM-DD``), or ``None``."""
    if not value or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def _digits(value: str | None) -> str | None:
    return "".join(value.split()) if isinstance(value, str) else value


class SlotForm(FlaskForm):
    """A slot picked (its start, as the page gave it)."""

    slot = StringField("slot", validators=[DataRequired(), Length(max=40)])


class DetailsForm(FlaskForm):
    """Who the booking is for."""

    name = StringField("name", validators=[DataRequired(), Length(max=MAX_NAME)], filters=[_strip])
    email = StringField(
        "email",
        validators=[Optional(), Length(max=254)],
        filters=[_strip],
    )


class CodeForm(FlaskForm):
    """A booking code typed in."""

    code = StringField(
        "code", validators=[DataRequired(), Regexp(r"^[0-9]{8}$")], filters=[_digits]
    )


class ConfirmForm(FlaskForm):
    """A form with no fields: the CSRF token of a button (cancel)."""


@bp.after_request
def _not_stored(response: Response) -> Response:
    """No cache may keep a booking page: they show someone's booking, or free seats now."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _service_name(code: str) -> str:
    service = hub().queue.service(code)
    return service.name(select_locale()) if service else code


def _booking_limit() -> str:
    return hub().settings.web.booking_limit


def _code_limit() -> str:
    return hub().settings.web.booking_code_limit


@bp.get("/book")
def services() -> str:
    """The services that take appointments."""
    book = hub().appointments
    rows = [(code, _service_name(code)) for code in book.bookable()]
    return render_template("portal/book.html", services=rows)


def _slots_page(
    service: str, day: date | None, *, action: str, appointment: Appointment | None = None
) -> tuple[str, int]:
    """The day picker and the free slots of ``service`` (to book, or to move to)."""
    book = hub().appointments
    try:
        days = book.days(service)
    except BookingError as exc:
        abort(refusal_status(exc))
    chosen = day or days[0]
    error = None
    slots: list[Slot] = []
    try:
        slots = [s for s in book.slots(service, chosen) if s.free > 0]
    except BookingError as exc:
        error = refusal_text(exc)
    page = render_template(
        "portal/book_slots.html",
        service=service,
        service_name=_service_name(service),
        day=chosen,
        first=days[0],
        last=days[-1],
        previous=chosen - timedelta(days=1) if chosen > days[0] else None,
        following=chosen + timedelta(days=1) if chosen < days[-1] else None,
        slots=slots,
        action=action,
        appointment=appointment,
        form=SlotForm(),
        error=error,
    )
    return page, 400 if error else 200


@bp.get("/book/<service>")
def slots(service: str) -> Page:
    """A day's free slots of a service (``?date=YYYY-MM-DD``, default the first open day)."""
    raw = request.args.get("date")
    day = parse_day(raw)
    if raw and day is None:
        abort(400)
    return _slots_page(service, day, action=url_for("booking.hold", service=service))


@bp.post("/book/<service>")
@limiter.shared_limit(_booking_limit, BOOKING_SCOPE)
def hold(service: str) -> Page:
    """Hold the slot picked, then ask for the name (on the booking's page)."""
    form = SlotForm()
    start = parse_slot(form.slot.data) if form.validate_on_submit() else None
    if start is None:
        abort(400)
    try:
        held = hub().appointments.hold(
            service, start, Contact("", lang=select_locale()), client=client_address()
        )
    except BookingError as exc:
        page = render_template("portal/book_refused.html", error=refusal_text(exc), service=service)
        return page, refusal_status(exc)
    return redirect(url_for("booking.appointment", code=held.code), 303)


@bp.route("/appointment", methods=["GET", "POST"])
@limiter.shared_limit(_code_limit, CODE_SCOPE, methods=["POST"])
def find() -> Page:
    """Type a booking code to see, cancel or move the booking."""
    form = CodeForm()
    if form.validate_on_submit():
        return redirect(url_for("booking.appointment", code=form.code.data), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("portal/appointment_find.html", form=form), status


def _appointment_or_404(code: str) -> Appointment:
    found = hub().appointments.find(code)
    if found is None:
        abort(404)
    return found


@bp.get("/appointment/<code>")
@limiter.shared_limit(_code_limit, CODE_SCOPE)
def appointment(code: str) -> Page:
    """A booking: the form while it is held, else its code, QR code and what can be done."""
    found = _appointment_or_404(code)
    return _appointment_page(found, DetailsForm())


def _appointment_page(found: Appointment, details: DetailsForm, error: str | None = None) -> Page:
    current = hub()
    rules = current.appointments.rules(found.service)
    page = render_template(
        "portal/appointment.html",
        appointment=found,
        service_name=_service_name(found.service),
        held=found.state is AppointmentState.HELD,
        booked=found.state is AppointmentState.BOOKED,
        qr=qr_svg(found.code) if found.state is AppointmentState.BOOKED else None,
        details=details,
        button=ConfirmForm(),
        hold_min=rules.hold_min,
        cancel_before_min=rules.cancel_before_min,
        error=error,
    )
    return (page, 400) if error else page


@bp.post("/appointment/<code>/confirm")
@limiter.shared_limit(_code_limit, CODE_SCOPE)
def confirm(code: str) -> Page:
    """Book the held slot with the name (and e-mail address) given."""
    found = _appointment_or_404(code)
    form = DetailsForm()
    if not form.validate_on_submit():
        return _appointment_page(found, form, _("Please check the name and the e-mail address."))
    contact = Contact(form.name.data or "", form.email.data or None, select_locale())
    try:
        hub().appointments.confirm(code, contact)
    except BookingError as exc:
        if exc.code == "invalid":
            return _appointment_page(found, form, refusal_text(exc))
        page = render_template(
            "portal/book_refused.html", error=refusal_text(exc), service=found.service
        )
        return page, refusal_status(exc)
    return redirect(url_for("booking.appointment", code=code), 303)


@bp.post("/appointment/<code>/cancel")
@limiter.shared_limit(_code_limit, CODE_SCOPE)
def cancel(code: str) -> Page:
    """Cancel the booking (until the service's deadline)."""
    found = _appointment_or_404(code)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        hub().appointments.cancel(code)
    except BookingError as exc:
        return _appointment_page(found, DetailsForm(), refusal_text(exc))
    return redirect(url_for("booking.appointment", code=code), 303)


@bp.route("/appointment/<code>/move", methods=["GET", "POST"])
@limiter.shared_limit(_code_limit, CODE_SCOPE)
def move(code: str) -> Page:
    """Pick another slot of the same service for the booking; it keeps its code."""
    found = _appointment_or_404(code)
    if found.state is not AppointmentState.BOOKED:
        abort(404)
    action = url_for("booking.move", code=code)
    if request.method == "GET":
        raw = request.args.get("date")
        day = parse_day(raw)
        if raw and day is None:
            abort(400)
        return _slots_page(found.service, day, action=action, appointment=found)
    form = SlotForm()
    start = parse_slot(form.slot.data) if form.validate_on_submit() else None
    if start is None:
        abort(400)
    try:
        hub().appointments.move(code, start)
    except BookingError as exc:
        return _appointment_page(found, DetailsForm(), refusal_text(exc))
    return redirect(url_for("booking.appointment", code=code), 303)


@bp.get("/appointment/<code>.ics")
@limiter.shared_limit(_code_limit, CODE_SCOPE)
def appointment_ics(code: str) -> Response:
    """The booking as a calendar file for the citizen's phone."""
    found = _appointment_or_404(code)
    if found.state is not AppointmentState.BOOKED:
        abort(404)
    ics = booking_calendar(found, _service_name(found.service), hub().config.branding().office_name)
    response = Response(ics, mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="{ics_filename(code)}"'
    return response


def ics_filename(code: str) -> str:
    """The name of booking ``code``'s calendar file."""
    return f"appointment-{code}.ics"


def booking_calendar(found: Appointment, service_name: str, office: str) -> bytes:
    """Booking ``found`` as an iCalendar file (its description in the current language).

    The portal's download and the confirmation e-mail's attachment.
    """
    calendar = Calendar()
    calendar.add("prodid", "-//Poradovnik//Appointments//EN")
    calendar.add("version", "2.0")
    event = CalendarEvent()
    event.add("uid", f"{found.id}@poradovnik")
    event.add("dtstamp", found.created_at)
    event.add("dtstart", found.starts_at)
    event.add("dtend", found.ends_at)
    event.add("summary", f"{service_name} · {office}")
    event.add("location", office)
    event.add("description", _("Booking code: %(code)s", code=found.code))
    calendar.add_component(event)
    return bytes(calendar.to_ical())
