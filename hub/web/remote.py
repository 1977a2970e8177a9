"""Remote tickets on the portal: ``/remote`` takes a ticket from a phone.

A citizen picks a service that takes remote tickets (its
:class:`~hub.model.RemoteRules`); the ticket joins the queue at once and the browser
goes to its my-ticket page (:mod:`hub.web.portal`), which shows the check-in code, its
QR code (what the kiosk's scanner reads, :func:`~sync_agent.protocol.remote_qr`) and
the latest time to be in the office.

Abuse is bounded three ways: ``[web] remote_limit`` per address (behind a proxy, the
address ``proxy_hops`` says), ``[web] remote_per_browser`` per browser and day (a
cookie signed with the app's secret: one tampered with is refused, 400) and the
service's daily quota (409). A remote ticket never carries a priority.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import segno
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
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from itsdangerous import BadData, URLSafeSerializer
from werkzeug.wrappers.response import Response as BaseResponse
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from hub.service import QueueError
from hub.web.context import hub
from hub.web.extensions import limiter
from hub.web.i18n import select_locale
from sync_agent.protocol import remote_qr

bp = Blueprint("remote", __name__)

REMOTE_SCOPE: Final = "remote-ticket"
"""The budget of remote tickets per address."""

COOKIE: Final = "poradovnik_remote"
"""The signed cookie that counts a browser's remote tickets of the day."""

_SALT: Final = "remote-tickets"

MAX_COOKIE: Final = 2048
"""A longer cookie is refused as damaged (a genuine one holds a day and a few ids)."""

Page = str | BaseResponse | tuple[str, int]


class TakeForm(FlaskForm):
    """Take a remote ticket of one service."""

    service = StringField("service", validators=[DataRequired(), Length(max=64)])


@bp.after_request
def _not_stored(response: Response) -> Response:
    """No cache may keep these pages: they carry a form's token, or set a browser's cookie."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=_SALT)  # type: ignore[arg-type]


class DamagedCookie(Exception):
    """The browser's remote-tickets cookie is not one the hub signed."""


def browser_tickets(today: date) -> list[str]:
    """The ids of the remote tickets this browser took ``today``, from its signed cookie.

    Raises :class:`DamagedCookie` when the cookie was tampered with.
    """
    raw = request.cookies.get(COOKIE)
    if not raw:
        return []
    if len(raw) > MAX_COOKIE:
        raise DamagedCookie
    try:
        data = _serializer().loads(raw)
    except BadData:
        raise DamagedCookie from None
    if not isinstance(data, dict) or data.get("d") != today.isoformat():
        return []
    ids = data.get("t")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DamagedCookie
    return ids


def _remote_services() -> list[tuple[str, str, str | None]]:
    """The services that take remote tickets: code, name, and why not now (or ``None``)."""
    queue = hub().queue
    lang = select_locale()
    return [
        (s.code, s.name(lang), queue.remote_availability(s.code).refused)
        for s in queue.services()
        if s.remote.enabled
    ]


def refusal_text(code: str) -> str:
    """Why no remote ticket was issued, in the citizen's language."""
    if code == "remote_quota":
        return str(_("This service takes no more remote tickets today."))
    if code == "daily_limit":
        return str(_("This service takes no more tickets today."))
    return str(_("This service takes no remote tickets now."))


def _page(status: int, error: str | None = None) -> tuple[str, int]:
    page = render_template(
        "portal/remote.html", services=_remote_services(), form=TakeForm(), error=error
    )
    return page, status


@bp.get("/remote")
def services() -> Page:
    """The services that take remote tickets, each with its button."""
    return _page(200)


def _remote_limit() -> str:
    return hub().settings.web.remote_limit


@bp.post("/remote")
@limiter.shared_limit(_remote_limit, REMOTE_SCOPE)
def take() -> Page:
    """Take a remote ticket, then show its my-ticket page."""
    form = TakeForm()
    if not form.validate_on_submit():
        abort(400)
    service = form.service.data
    assert service is not None
    queue = hub().queue
    today = queue.today()
    try:
        taken = browser_tickets(today)
    except DamagedCookie:
        page = _page(400, str(_("Your browser sent a damaged cookie. Please try again.")))
        damaged = current_app.make_response(page)
        damaged.delete_cookie(COOKIE)
        return damaged
    if len(taken) >= hub().settings.web.remote_per_browser:
        return _page(429, str(_("This browser has taken its remote tickets for today.")))
    if queue.service(service) is None:
        abort(404)
    try:
        issued = queue.issue_remote(service, lang=select_locale(), actor="portal")
    except QueueError as refused:
        return _page(409, refusal_text(refused.code))
    response = redirect(url_for("portal.ticket", ticket_id=issued.ticket.id), 303)
    value = _serializer().dumps({"d": today.isoformat(), "t": [*taken, issued.ticket.id]})
    response.set_cookie(
        COOKIE,
        value,
        max_age=24 * 3600,
        httponly=True,
        samesite="Lax",
        secure=hub().settings.web.secure_cookies,
    )
    return response


@bp.app_template_filter("remote_qr")
def remote_qr_svg(code: str) -> str:
    """A remote ticket's check-in QR code as inline SVG (the kiosk's scanner reads it)."""
    return str(segno.make(remote_qr(code), error="m").svg_inline(scale=5, border=2))
