"""The clerks' web panel at ``/clerk``: a counter's buttons in the browser.

For counters without a button panel. A signed-in clerk (or admin) picks a
counter, kept in the session, and acts on it with POST forms (CSRF, no
JavaScript needed): Next, Recall, No-show, Done, Transfer, Park, Pause and
Resume, calling a parked ticket back, and giving priority to the current ticket or
a waiting one (:meth:`QueueService.prioritise`, audited as ``web:<user name>``;
the panel names the reason, the lobby only marks the ticket). A citizen who checked
in with a booking
is marked with the slot's time and the name they booked with. Each action goes through
:meth:`QueueService.counter_action`, the path of the button panels' MQTT
commands and the REST API, audited as ``web:<user name>``. A clerk works only at
the counters (and for the services) an admin assigned them; an admin anywhere.
Picking a counter seats the clerk there (:mod:`hub.clerks`): until sign-out, a
switch or the session's end, the counter's button panel acts for them. The page's live part
follows the queue through the event stream, so whatever another device does at
the same counter shows at once; ``static/clerk.js`` adds keyboard shortcuts.

Two guards keep a citizen from being skipped by accident, as on the button
panel: a Next within ``[counter] next_guard_s`` of the current ticket's call is
refused, and every action names the ticket the clerk saw, so an action on a
page that another device has overtaken is refused rather than applied to a
ticket the clerk has not seen.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers.response import Response as BaseResponse
from wtforms import HiddenField, StringField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from hub.model import Change, Counter, Priority, Ticket, TicketState
from hub.service import Engine, QueueError
from hub.signups import MAX_ESERVICES, SignUpError
from hub.web.context import hub
from hub.web.i18n import select_locale
from hub.web.portal import LIVE_URL
from hub.web.refusals import REFUSALS, refusal_text
from hub.web.views import longest_waits, minutes
from sync_agent.protocol import COUNTER_ACTIONS

bp = Blueprint("clerk", __name__, url_prefix="/clerk")

SESSION_KEY: Final = "clerk_counter"
"""The counter the signed-in clerk works at."""


def _(text: str, **values: Any) -> str:
    """``text`` in the page's language, with ``values`` put in."""
    return str(gettext(text, **values))


class ActionForm(FlaskForm):
    """One press of a button: the action, the counter and the ticket the clerk saw."""

    counter = HiddenField(validators=[DataRequired(), Length(max=64)])
    action = StringField(validators=[AnyOf(COUNTER_ACTIONS)])
    seen = HiddenField(validators=[Optional(), Length(max=64)])
    """The id of the current ticket the page showed (empty: none)."""
    service = StringField(validators=[Optional(), Length(max=64)])
    """The target of a transfer."""
    ticket_id = HiddenField(validators=[Optional(), Length(max=64)])
    """With ``next``: the parked ticket to call back."""


PRIORITY_REASONS: Final = {
    Priority.DISABILITY: lazy_gettext("Disability"),
    Priority.PREGNANCY: lazy_gettext("Pregnancy"),
    Priority.AGE: lazy_gettext("Older age"),
    Priority.WITH_CHILD: lazy_gettext("With a small child"),
    Priority.OTHER: lazy_gettext("Other reason"),
}
"""The reasons a clerk may give priority for, as the panel names them."""


class PriorityForm(FlaskForm):
    """Priority for a ticket of the counter: its number and the reason."""

    counter = HiddenField(validators=[DataRequired(), Length(max=64)])
    number = StringField(validators=[DataRequired(), Length(max=16)])
    """The ticket's number as the citizen shows it, e.g. ``A042``."""
    reason = StringField(validators=[AnyOf([p.value for p in Priority])])


class ChooseForm(FlaskForm):
    """The counter the clerk works at."""

    counter = HiddenField(validators=[DataRequired(), Length(max=64)])


@dataclass(frozen=True, slots=True)
class ServiceLine:
    """One service's queue as the panel shows it."""

    code: str
    prefix: str
    name: str
    waiting: int
    longest_min: int | None
    """The longest current wait, in whole minutes; ``None`` when nobody waits."""
    served_here: bool
    """Whether this counter serves the service (its tickets come here)."""


@dataclass(frozen=True, slots=True)
class Panel:
    """What the clerk's panel shows of one counter, read in one consistent view."""

    counter: Counter
    ticket: Ticket | None
    service_name: str | None
    """The current ticket's service, in the page's language."""
    waited_min: int | None
    """How long the current ticket waited before it was called."""
    parked: list[Ticket]
    """Tickets set aside at this counter, to call back."""
    services: list[ServiceLine]
    waiting_here: int
    """Tickets waiting for this counter's services."""
    booked_name: str | None = None
    """The name the citizen booked with, when the current ticket is a checked-in
    appointment (the clerk greets them with it)."""
    eservices: tuple[str, ...] = ()
    """When the current ticket's service is an e-service registration desk: the
    e-services the clerk can tick on Done (the citizen was signed up for them)."""

    @property
    def called(self) -> bool:
        """Whether the current ticket is called and its citizen not yet served."""
        return self.ticket is not None and self.ticket.state is TicketState.CALLED

    @property
    def transfer_targets(self) -> list[ServiceLine]:
        """The services the current ticket can be sent to."""
        current = self.ticket.service if self.ticket else None
        return [s for s in self.services if s.code != current]


def _panel(counter_id: str) -> Panel | None:
    queue = hub().queue
    lang = select_locale()
    now = queue.clock()

    def look(engine: Engine) -> Panel | None:
        counter = engine.counters.get(counter_id)
        if counter is None:
            return None
        ticket = engine.tickets.get(counter.current) if counter.current else None
        longest = longest_waits(engine, now)
        services = [
            ServiceLine(
                code=s.code,
                prefix=s.prefix,
                name=s.name(lang),
                waiting=engine.waiting_count(s.code),
                longest_min=minutes(int(longest[s.code])) if s.code in longest else None,
                served_here=s.code in counter.services,
            )
            for s in engine.services.values()
        ]
        parked = [
            t
            for t in engine.tickets.values()
            if t.state is TicketState.PARKED and t.counter == counter.id
        ]
        service = engine.services.get(ticket.service) if ticket else None
        waited = None
        if ticket is not None:
            waited = minutes(int(((ticket.called_at or now) - ticket.issued_at).total_seconds()))
        return Panel(
            counter=counter,
            ticket=ticket,
            service_name=service.name(lang) if service else None,
            waited_min=waited,
            parked=sorted(parked, key=lambda t: t.number),
            services=services,
            waiting_here=sum(s.waiting for s in services if s.served_here),
        )

    view = queue.read(look)
    appointment_id = view.ticket.appointment if view and view.ticket else None
    if view is not None and appointment_id is not None:
        appointment = queue.appointment(appointment_id)
        if appointment is not None:
            view = dataclasses.replace(view, booked_name=appointment.name)
    signups = hub().signups
    if view is not None and view.ticket is not None and signups.is_desk(view.ticket.service):
        view = dataclasses.replace(view, eservices=signups.setup().eservices)
    return view


def _counter_or_choose() -> str | None:
    counter_id = session.get(SESSION_KEY)
    if isinstance(counter_id, str):
        counter = hub().queue.counter(counter_id)
        if counter is not None and current_user.user.may_work(counter):
            return counter_id
    return None


def _workable(counter_id: str) -> Counter:
    """The counter the signed-in user may work at: 404 if none, 403 if not theirs."""
    counter = hub().queue.counter(counter_id)
    if counter is None:
        abort(404)
    if not current_user.user.may_work(counter):
        abort(403)
    return counter


def _sit(counter_id: str) -> None:
    """Seat the user at ``counter_id`` (or keep their seat) for the session's lifetime."""
    queue = hub().queue
    username = current_user.user.username
    until = queue.clock() + current_app.permanent_session_lifetime
    if not queue.clerks.renew(counter_id, username, until):
        queue.clerks.sit(counter_id, username, queue.clock(), until)


@bp.get("/")
@login_required
def panel() -> str | BaseResponse:
    """The panel of the clerk's counter (or the choice of counter, the first time)."""
    counter_id = _counter_or_choose()
    if counter_id is None:
        return redirect(url_for("clerk.choose"))
    _sit(counter_id)
    view = _panel(counter_id)
    assert view is not None
    return render_template(
        "clerk/panel.html",
        panel=view,
        live=LIVE_URL,
        fragment=url_for("clerk.fragment", counter_id=counter_id),
    )


@bp.get("/fragment/<counter_id>")
@login_required
def fragment(counter_id: str) -> Any:
    """The panel's live part, for live.js (never cached: it carries a CSRF token)."""
    _workable(counter_id)
    view = _panel(counter_id)
    if view is None:
        abort(404)
    return render_template("clerk/_panel.html", panel=view), {"Cache-Control": "no-store"}


@bp.route("/counter", methods=["GET", "POST"])
@login_required
def choose() -> str | BaseResponse:
    """Pick the counter to work at; it is remembered for the session."""
    form = ChooseForm()
    queue = hub().queue
    user = current_user.user
    if form.validate_on_submit():
        chosen = queue.counter(form.counter.data or "")
        if chosen is not None:
            if not user.may_work(chosen):
                abort(403)
            session[SESSION_KEY] = chosen.id
            _sit(chosen.id)
            return redirect(url_for("clerk.panel"))
        flash(str(REFUSALS["unknown_counter"]), "error")
    every = queue.counters()
    counters = [c for c in every if user.may_work(c)]
    return render_template(
        "clerk/choose.html",
        counters=counters,
        none_assigned=bool(every) and not counters,
        chosen=session.get(SESSION_KEY),
    )


@bp.post("/act")
@login_required
def act() -> BaseResponse:
    """Do one action at a counter, then show the panel again (post/redirect/get)."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    counter_id = form.counter.data or ""
    action = form.action.data or ""
    queue = hub().queue
    counter = _workable(counter_id)
    session[SESSION_KEY] = counter_id
    _sit(counter_id)
    ticked = request.form.getlist("eservices")
    if len(ticked) > MAX_ESERVICES:
        abort(400)
    try:
        _check_guards(counter, action, form.seen.data or None, form.ticket_id.data or None)
        ticked_names = _ticked(counter, action, ticked)
        change = queue.counter_action(
            counter_id,
            action,
            actor=f"web:{current_user.id}",
            service=form.service.data or None,
            ticket_id=form.ticket_id.data or None,
        )
    except QueueError as refused:
        flash(refusal_text(refused), "error")
    else:
        if ticked_names and counter.current is not None:
            hub().signups.record(
                counter.current, ticked_names, clerk=f"web:{current_user.id}", at=queue.clock()
            )
        flash(_done_message(action, change), "notice")
    return redirect(url_for("clerk.panel"), code=303)


@bp.post("/priority")
@login_required
def prioritise() -> BaseResponse:
    """Give priority to the counter's ticket or one waiting for its services (by number)."""
    form = PriorityForm()
    if not form.validate_on_submit():
        abort(400)
    queue = hub().queue
    counter = _workable(form.counter.data or "")
    session[SESSION_KEY] = counter.id
    number = (form.number.data or "").strip().upper()
    ticket = queue.read(lambda engine: _ticket_for(engine, counter, number))
    if ticket is None:
        flash(_("No ticket %(number)s is at or waits for this counter.", number=number), "error")
        return redirect(url_for("clerk.panel"), code=303)
    reason = Priority(form.reason.data)
    try:
        queue.prioritise(ticket.id, reason, actor=f"web:{current_user.id}")
    except QueueError as refused:
        flash(refusal_text(refused), "error")
    else:
        flash(_("%(number)s now has priority.", number=ticket.number), "notice")
    return redirect(url_for("clerk.panel"), code=303)


def _ticket_for(engine: Engine, counter: Counter, number: str) -> Ticket | None:
    """The live ticket ``number`` that is ``counter``'s, or waits for one of its services."""
    for ticket in engine.tickets.values():
        if ticket.number != number:
            continue
        if ticket.id == counter.current or (
            ticket.state is TicketState.WAITING and ticket.service in counter.services
        ):
            return ticket
    return None


def _ticked(counter: Counter, action: str, ticked: list[str]) -> tuple[str, ...]:
    """The e-services ticked for the current ticket, to record if ``action`` finishes it.

    Only Done, or Next (which finishes the current citizen first), of a registration
    desk's ticket records them; an e-service the admin has not listed is refused
    before the action.
    """
    if action not in ("done", "next") or not ticked or counter.current is None:
        return ()
    ticket = hub().queue.live_ticket(counter.current)
    signups = hub().signups
    if ticket is None or not signups.is_desk(ticket.service):
        return ()
    try:
        return signups.check(ticked)
    except SignUpError:
        raise QueueError("unknown_eservice", "an e-service ticked is not listed") from None


def _check_guards(counter: Counter, action: str, seen: str | None, recall: str | None) -> None:
    """Refuse an action that could skip a citizen the clerk has not seen."""
    if seen != counter.current:
        raise QueueError("stale_page", f"counter {counter.id} changed since the page was shown")
    if action != "next" or recall is not None or counter.current is None:
        return
    queue = hub().queue
    ticket = queue.live_ticket(counter.current)
    guard_s = hub().settings.counter.next_guard_s
    if ticket is None or ticket.state is not TicketState.CALLED or ticket.called_at is None:
        return
    if (queue.clock() - ticket.called_at).total_seconds() < guard_s:
        raise QueueError(
            "next_guard",
            f"{ticket.number} was called less than {guard_s} s ago",
            params={"number": ticket.number},
        )


def _done_message(action: str, change: Change) -> str:
    """What the clerk is told after an action went through."""
    subject = change.subject
    if subject is None:
        if action == "pause":
            return _("The counter is paused.")
        if action == "resume":
            return _("The counter is open.")
        return _("Nobody is waiting for this counter's services.")
    number = subject.number
    if subject.state is TicketState.NO_SHOW:
        return _("%(number)s did not come.", number=number)
    if subject.state is TicketState.DONE:
        return _("%(number)s is done.", number=number)
    if subject.state is TicketState.PARKED:
        return _("%(number)s is set aside.", number=number)
    if subject.state is TicketState.WAITING:
        service = hub().queue.service(subject.service)
        name = service.name(select_locale()) if service else subject.service
        return _("%(number)s now waits for %(service)s.", number=number, service=name)
    if action == "recall":
        return _("%(number)s called again (%(calls)s×).", number=number, calls=subject.calls)
    return _("Called %(number)s.", number=number)


@bp.app_template_filter("priority_reason")
def priority_reason_filter(priority: Priority) -> str:
    """The reason for a ticket's priority, in the page's language (for the clerk only)."""
    return str(PRIORITY_REASONS[priority])


@bp.app_template_global("priority_reasons")
def priority_reasons() -> dict[Priority, str]:
    """Every reason a clerk may give priority for, in the page's language."""
    return {reason: str(label) for reason, label in PRIORITY_REASONS.items()}


@bp.app_template_filter("clock")
def clock_filter(at: datetime | None) -> str:
    """A time of today in the office's time zone, as ``10:02``."""
    if at is None:
        return "–"
    return at.astimezone(hub().queue.timezone).strftime("%H:%M")


__all__ = ["bp"]
