"""The citizen portal at ``/``: live queue, my ticket (from the ticket's QR code), e-services.

Pages are mobile-first and work without JavaScript (a ``<noscript>`` refresh
keeps the live ones current); with it, ``static/live.js`` listens to the event
stream and swaps in the page's fragment when the queue changes. The queue page
and the ticket pages are rendered once per queue change and language
(:class:`~hub.web.cache.PageCache`) and carry nothing personal, so
one rendering serves every reader.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from babel.dates import format_skeleton
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, Regexp

from hub.eservice import Application, normalize_reference
from hub.feedback import MAX_COMMENT, RATINGS, FeedbackError
from hub.lockout import Locked
from hub.notify import Notices, application_server_key
from hub.web.cache import CACHEABLE, PageCache
from hub.web.context import hub
from hub.web.extensions import limiter
from hub.web.i18n import select_locale
from hub.web.views import TICKET_ID_RE, queue_rows, ticket_view

bp = Blueprint("portal", __name__)

LIVE_URL: Final = "/live/queue"
"""The event stream every live page listens to."""

_HTML: Final = "text/html; charset=utf-8"

LOOKUP_SCOPE: Final = "eservice-lookup"
"""The portal's form and the API share one lookup budget per address."""

PIN_SCOPE: Final = "pin"
"""The lockout scope of e-service references (:class:`~hub.lockout.Lockout`)."""


def lookup_application(reference: str, pin: str) -> Application | None:
    """The application with this reference and PIN, counting the attempt at the reference.

    The portal's form and the API share the count. Raises
    :class:`~hub.lockout.Locked` after too many wrong PINs for the reference, whether
    it exists or not.
    """
    current = hub()
    return current.lockout.check(
        PIN_SCOPE, normalize_reference(reference), lambda: current.eservices.lookup(reference, pin)
    )


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


class LookupForm(FlaskForm):
    """The e-service lookup: reference and PIN from the application's receipt."""

    reference = StringField(
        "reference", validators=[DataRequired(), Length(max=64)], filters=[_strip]
    )
    pin = StringField(
        "pin",
        validators=[DataRequired(), Length(min=4, max=32), Regexp(r"^[A-Za-z0-9 ]+$")],
        filters=[_strip],
    )


def _cache() -> PageCache:
    current = hub()
    cache = current.pages.get("portal")
    if cache is None:
        cache = current.pages["portal"] = PageCache(current.feed, current.config)
    assert isinstance(cache, PageCache)
    return cache


def _cached(key: tuple[str, ...], render: Callable[[str], str]) -> Response:
    """The page ``key`` in the request's language, rendered by ``render(lang)`` if stale."""
    lang = select_locale()
    body = _cache().get((*key, lang), lambda: render(lang).encode())
    response = Response(body, content_type=_HTML)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Vary"] = "Accept-Language, Cookie"
    response.headers[CACHEABLE] = "1"
    return response


@bp.get("/")
def queue() -> Response:
    """The live queue: each service's waiting count, expected wait and open counters."""
    return _cached(
        ("queue",),
        lambda lang: render_template(
            "portal/queue.html", rows=queue_rows(hub().queue, lang), live=LIVE_URL
        ),
    )


@bp.app_template_filter("opening")
def opening_filter(at: datetime) -> str:
    """When a closed service opens next, in the page's language: ``Opens Tue, Dec 8 at 08:00``.

    ``at`` is in the site's zone (as the queue gives it).
    """
    locale = get_locale()
    clock = format_skeleton("Hm", at, tzinfo=at.tzinfo, locale=locale)
    if at.date() == hub().queue.today():
        return str(_("Opens today at %(time)s", time=clock))
    day = format_skeleton("MMMEd", at, tzinfo=at.tzinfo, locale=locale)
    return str(_("Opens %(day)s at %(time)s", day=day, time=clock))


@bp.get("/queue/fragment")
def queue_fragment() -> Response:
    """The queue page's live part, for live.js."""
    return _cached(
        ("queue-fragment",),
        lambda lang: render_template("portal/_queue.html", rows=queue_rows(hub().queue, lang)),
    )


def _ticket_page(template: str, ticket_id: str, **context: object) -> Callable[[str], str]:
    def render(lang: str) -> str:
        view = ticket_view(hub().queue, ticket_id, lang) or abort(404)
        return render_template(template, ticket=view, **context)

    return render


@bp.get("/t/<ticket_id>")
def ticket(ticket_id: str) -> Response:
    """My ticket, reached from the ticket's QR code: position, expected wait, counter."""
    if not TICKET_ID_RE.fullmatch(ticket_id):
        abort(404)
    page = _ticket_page(
        "portal/ticket.html", ticket_id, live=LIVE_URL, notify=hub().notices is not None
    )
    return _cached(("ticket", ticket_id), page)


@bp.get("/t/<ticket_id>/fragment")
def ticket_fragment(ticket_id: str) -> Response:
    """The ticket page's live part, for live.js."""
    if not TICKET_ID_RE.fullmatch(ticket_id):
        abort(404)
    return _cached(("ticket-fragment", ticket_id), _ticket_page("portal/_ticket.html", ticket_id))


NOTIFY_SCOPE: Final = "notify"
"""The rate limit shared by the notification forms and push subscriptions."""


class NotifyForm(FlaskForm):
    """A ticket holder's e-mail address and phone number for notices (either may be empty)."""

    email = StringField("email", validators=[Optional(), Length(max=254)], filters=[_strip])
    phone = StringField("phone", validators=[Optional(), Length(max=32)], filters=[_strip])


def _notices(ticket_id: str) -> Notices:
    """The hub's notices for a live ticket ``ticket_id``; 404 when either is missing."""
    notices = hub().notices
    if notices is None or not TICKET_ID_RE.fullmatch(ticket_id):
        abort(404)
    if hub().queue.live_ticket(ticket_id) is None:
        abort(404)
    return notices


def _notify_page(ticket_id: str, form: NotifyForm, error: str | None = None) -> str:
    notices = _notices(ticket_id)
    view = ticket_view(hub().queue, ticket_id, select_locale()) or abort(404)
    return render_template(
        "portal/notify.html",
        ticket=view,
        form=form,
        error=error,
        channels=notices.channels,
        subscribed=notices.subscribed(ticket_id),
        vapid_key=application_server_key(notices.vapid) if notices.vapid else "",
        ahead=notices.settings.ahead_for(view.service),
        grace_min=notices.settings.grace_min,
    )


@bp.get("/t/<ticket_id>/notify")
def notify(ticket_id: str) -> str:
    """The ticket holder's choice of notices: push, e-mail, SMS (never cached)."""
    return _notify_page(ticket_id, NotifyForm())


@bp.post("/t/<ticket_id>/notify")
@limiter.shared_limit(lambda: hub().settings.web.lookup_limit, NOTIFY_SCOPE)
def notify_save(ticket_id: str) -> BaseResponse | tuple[str, int]:
    """Keep the e-mail address and phone number given, or erase them all (``forget``)."""
    notices = _notices(ticket_id)
    form = NotifyForm()
    if not form.validate_on_submit():
        return _notify_page(ticket_id, form, _("Check the address and the number.")), 400
    if "forget" in request.form:
        notices.forget(ticket_id)
    else:
        given = {"email": form.email.data, "sms": form.phone.data}
        try:
            for channel, contact in given.items():
                if contact:
                    notices.subscribe(ticket_id, channel, contact, select_locale())
        except ValueError:
            return _notify_page(ticket_id, form, _("Check the address and the number.")), 400
    return redirect(url_for("portal.notify", ticket_id=ticket_id), 303)


@bp.post("/t/<ticket_id>/notify/push")
@limiter.shared_limit(lambda: hub().settings.web.lookup_limit, NOTIFY_SCOPE)
def notify_push(ticket_id: str) -> tuple[dict[str, str], int]:
    """Keep a browser's push subscription (JSON, from ``static/notify.js``)."""
    notices = _notices(ticket_id)
    body = request.get_data(cache=False, as_text=True)
    try:
        notices.subscribe(ticket_id, "push", body, select_locale())
    except ValueError as exc:
        return {"error": str(exc)}, 400
    return {"status": "subscribed"}, 201


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker that shows the hub's push notices (served from the root)."""
    response = current_app.send_static_file("sw.js")
    response.headers["Cache-Control"] = "no-cache"
    return response


class RatingForm(FlaskForm):
    """A citizen's rating of a finished visit: 1-5 and an optional comment."""

    rating = RadioField("rating", choices=[str(n) for n in RATINGS], validators=[InputRequired()])
    comment = TextAreaField(
        "comment", validators=[Optional(), Length(max=MAX_COMMENT)], filters=[_strip]
    )


def refusal_texts() -> dict[str, str]:
    """Why a visit cannot be rated, in the citizen's language, by :class:`FeedbackError` code."""
    return {
        "unknown_ticket": _("There is no such ticket."),
        "already_rated": _("This visit has already been rated. Thank you!"),
        "not_done": _("You can rate your visit once it has ended."),
        "too_late": _("The time to rate this visit has passed."),
        "invalid": _("Choose a rating from 1 to 5; a comment may have at most 500 characters."),
    }


_REFUSAL_STATUS: Final = {"unknown_ticket": 404, "invalid": 400, "too_late": 410}
"""The HTTP status of each refusal (others: 409, the ticket's state does not allow it)."""


@bp.route("/t/<ticket_id>/rate", methods=["GET", "POST"])
@limiter.limit(lambda: hub().settings.web.lookup_limit, methods=["POST"])
def rate(ticket_id: str) -> tuple[str, int]:
    """Rate a finished visit (1-5, a comment), once, within ``[web] rating_window_h``."""
    if not TICKET_ID_RE.fullmatch(ticket_id):
        abort(404)
    feedback = hub().feedback
    form = RatingForm()
    chosen = request.args.get("rating")
    if request.method == "GET" and chosen in {str(n) for n in RATINGS}:
        form.rating.data = chosen
    number = None
    try:
        number = feedback.check(ticket_id)
        if request.method == "POST":
            if not form.validate_on_submit():
                raise FeedbackError("invalid", "the form is not valid")
            assert form.rating.data is not None
            feedback.rate(ticket_id, int(form.rating.data), form.comment.data, source="portal")
            return render_template("portal/rate.html", thanks=True, number=number), 200
    except FeedbackError as refused:
        page = render_template(
            "portal/rate.html",
            form=form if refused.code == "invalid" else None,
            ticket_id=ticket_id,
            number=number,
            error=refusal_texts()[refused.code],
        )
        return page, _REFUSAL_STATUS.get(refused.code, 409)
    page = render_template("portal/rate.html", form=form, ticket_id=ticket_id, number=number)
    return page, 200


@bp.route("/eservice", methods=["GET", "POST"])
@limiter.shared_limit(lambda: hub().settings.web.lookup_limit, LOOKUP_SCOPE, methods=["POST"])
def eservice() -> str | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """An application's status from its reference and PIN; one message for any mismatch."""
    form = LookupForm()
    application = None
    if request.method == "POST":
        if form.validate_on_submit():
            assert form.reference.data is not None
            assert form.pin.data is not None
            try:
                application = lookup_application(form.reference.data, form.pin.data)
            except Locked as locked:
                message = _("Too many wrong PINs were entered for this reference. Try again later.")
                page = render_template("portal/eservice.html", form=form, error=message)
                return page, 429, {"Retry-After": str(locked.retry_after_s)}
        if application is None:
            message = _("We found no application with this reference and PIN.")
            return render_template("portal/eservice.html", form=form, error=message), 404
    return render_template(
        "portal/eservice.html", form=form, application=application, status_names=status_names()
    )


def status_names() -> dict[str, str]:
    """An application's statuses in the citizen's language."""
    return {
        "received": _("Received"),
        "in_progress": _("In progress"),
        "waiting_for_documents": _("Waiting for documents"),
        "decided": _("Decided"),
        "ready_for_pickup": _("Ready for pickup"),
        "closed": _("Closed"),
    }


@bp.get("/branding.css")
def branding_css() -> Response:
    """The office's accent colour as a style sheet (no inline styles under the CSP)."""
    color = hub().config.branding().accent_color
    response = Response(f":root {{ --accent: {color}; }}\n", content_type="text/css")
    response.headers["Cache-Control"] = "no-cache"
    return response
