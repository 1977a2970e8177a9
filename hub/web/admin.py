"""The office's admin pages at ``/admin``: sign-in, dashboard, set-up and statistics.

The sign-in page, the pages' navigation, the dashboard and the audit speak sk, cs,
uk and en (``?lang=``, as the portal); the other pages are in English.

Admins manage services, counters, the office's closures, devices' accounts,
users (and the counters and services each clerk works), API tokens and branding;
clerks see the dashboard and the statistics. Every change an admin makes is written
to the audit (:mod:`hub.audit`), listed at ``/admin/audit``. Every form carries a
CSRF token (Flask-WTF); passwords are argon2 hashes (:mod:`hub.users`).
Changes to the queue's catalog go through the service layer, which also
publishes them to the devices.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from functools import wraps
from typing import Any, Final, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext, lazy_gettext
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers.response import Response as BaseResponse
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from common.errors import PoradovnikError
from common.i18n import LANGUAGES
from hub import audit, clerks, feedback, signups, stats
from hub.appointments import BookingError, BookingRules, Contact, Slot, parse_seats
from hub.bridge import DeviceView
from hub.lockout import Locked
from hub.model import Counter, OpeningHours, RemoteRules, Service
from hub.provisioning import pair_device
from hub.service import MAX_CLOSURE_REASON, Closure, QueueError
from hub.siteconfig import Branding
from hub.users import SCOPES, USER_ROLES, User, UserRole, session_id, session_user
from hub.web.booking import parse_day, parse_slot
from hub.web.context import hub
from hub.web.extensions import limiter, login_manager
from hub.web.i18n import select_locale
from hub.web.refusals import refusal_text
from hub.web.views import longest_waits, queue_rows
from sync_agent.broker_accounts import Role

bp = Blueprint("admin", __name__, url_prefix="/admin")

F = TypeVar("F", bound=Callable[..., Any])

PAIRING_ONLINE_WAIT_S: Final = 10.0
"""How long the devices page waits for a paired device to log in before it answers."""
Page = str | BaseResponse | tuple[str, int]

_ID: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$"
_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SPAN_RE: Final = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")


class LoginUser(UserMixin):
    """A signed-in user as Flask-Login sees it."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = user.username

    def get_id(self) -> str:
        """What the session cookie holds: the user name and the user's session key.

        A new key in the database (sign-out, new password) ends the sessions that
        carry the old one, wherever their cookies are.
        """
        return session_id(self.user.username, self.user.session_key)

    @property
    def is_admin(self) -> bool:
        """Whether the user may change the set-up."""
        return self.user.is_admin


@login_manager.user_loader
def _load_user(session: str) -> LoginUser | None:
    user = session_user(session, _active_user)
    return LoginUser(user) if user is not None else None


def _active_user(username: str) -> User | None:
    user = hub().users.get(username)
    return user if user is not None and user.active else None


login_manager.login_view = "admin.login"
login_manager.session_protection = "strong"


def admin_required(view: F) -> F:
    """Let only admins in (clerks get 403)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapped)


def record(kind: str, object_id: str, action: str, summary: str) -> None:
    """Write one of the signed-in admin's changes to the audit."""
    hub().audit.record(f"admin:{current_user.user.username}", kind, object_id, action, summary)


# -- sign-in ---------------------------------------------------------------------


class LoginForm(FlaskForm):
    """User name and password."""

    username = StringField(lazy_gettext("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=256)])


LOGIN_SCOPE: Final = "login"
"""The lockout scope of user names (:class:`~hub.lockout.Lockout`)."""


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: hub().settings.web.login_limit, methods=["POST"])
def login() -> Page | tuple[str, int, dict[str, str]]:
    """Sign in; a wrong name or password gets one message for both.

    After a few wrong passwords for a user name (from any address), it is locked
    for a while: 429, whether the user exists or not.
    """
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data
        password = form.password.data
        assert username is not None
        assert password is not None
        current = hub()
        try:
            user = current.lockout.check(
                LOGIN_SCOPE, username, lambda: current.users.authenticate(username, password)
            )
        except Locked as locked:
            page = render_template("admin/login.html", form=form, locked=True)
            return page, 429, {"Retry-After": str(locked.retry_after_s)}
        if user is not None:
            login_user(LoginUser(user))
            return redirect(next_page() or url_for("admin.dashboard"))
        return render_template("admin/login.html", form=form, failed=True), 401
    return render_template("admin/login.html", form=form)


def next_page() -> str | None:
    """The page that sent the user to sign in (``?next=``), if it is a path on this site.

    A path has one leading slash and no backslash or control character (browsers drop
    tabs and newlines, so a tab between two slashes would make a link to another site).
    """
    wanted = request.args.get("next", "")
    if (
        not wanted.startswith("/")
        or wanted.startswith("//")
        or "\\" in wanted
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in wanted)
    ):
        return None
    parts = urlsplit(wanted)
    return wanted if not parts.scheme and not parts.netloc else None


@bp.post("/logout")
@login_required
def logout() -> BaseResponse:
    """Sign out: end every session of the user, on every browser.

    A POST with the CSRF token, so no link can sign anyone out.
    """
    username = current_user.user.username
    hub().users.end_sessions(username)
    hub().queue.clerks.leave(username)
    logout_user()
    return redirect(url_for("admin.login"))


# -- dashboard ---------------------------------------------------------------------


@bp.get("/")
@login_required
def dashboard() -> str:
    """Waiting per service, the longest current wait, the counters open: live."""
    return render_template("admin/dashboard.html", **_dashboard(), live="/live/queue")


@bp.get("/dashboard/fragment")
@login_required
def dashboard_fragment() -> str:
    """The dashboard's live part, for live.js."""
    return render_template("admin/_dashboard.html", **_dashboard())


def _dashboard() -> dict[str, Any]:
    queue = hub().queue
    now = queue.clock()

    def look(engine: Any) -> tuple[dict[str, float], list[tuple[Counter, str | None]]]:
        longest = longest_waits(engine, now)
        counters = [
            (c, engine.tickets[c.current].number if c.current in engine.tickets else None)
            for c in engine.counters.values()
        ]
        return longest, counters

    longest, counters = queue.read(look)
    rows = queue_rows(queue, select_locale())
    return {
        "rows": rows,
        "longest_min": {code: int(s // 60) for code, s in longest.items()},
        "counters": counters,
        "open_count": sum(1 for c, _ in counters if c.state.value == "open"),
        "waiting_total": sum(r.waiting for r in rows),
    }


# -- services ----------------------------------------------------------------------


class ServiceForm(FlaskForm):
    """A service's definition."""

    code = StringField(
        lazy_gettext("Code"), validators=[DataRequired(), Length(max=64), Regexp(_ID)]
    )
    prefix = StringField(
        lazy_gettext("Prefix"), validators=[DataRequired(), Length(max=8), Regexp(r"^[A-Z]+$")]
    )
    name_sk = StringField(lazy_gettext("Name (sk)"), validators=[DataRequired(), Length(max=120)])
    name_cs = StringField(lazy_gettext("Name (cs)"), validators=[Optional(), Length(max=120)])
    name_uk = StringField(lazy_gettext("Name (uk)"), validators=[Optional(), Length(max=120)])
    name_en = StringField(lazy_gettext("Name (en)"), validators=[Optional(), Length(max=120)])
    hours = StringField(
        lazy_gettext("Opening hours"),
        validators=[DataRequired(), Length(max=400)],
        default="always",
    )
    daily_limit = IntegerField(
        lazy_gettext("Daily limit"), validators=[Optional(), NumberRange(1, 999)]
    )
    service_time_min = IntegerField(
        lazy_gettext("Usual visit (min)"),
        validators=[DataRequired(), NumberRange(1, 240)],
        default=5,
    )
    open = BooleanField(lazy_gettext("Issuing tickets"), default=True)
    priority_allowed = BooleanField(lazy_gettext("Priority tickets at kiosks"), default=True)
    desk = BooleanField(
        lazy_gettext("E-service registration desk (the clerk records e-service sign-ups)")
    )
    remote_enabled = BooleanField(
        lazy_gettext("Remote tickets (taken on the portal)"), default=False
    )
    remote_quota = IntegerField(
        lazy_gettext("Remote tickets per day"),
        validators=[Optional(), NumberRange(1, 999)],
        default=50,
    )
    remote_stop_min = IntegerField(
        lazy_gettext("Remote tickets stop (min before closing)"),
        validators=[Optional(), NumberRange(0, 720)],
        default=60,
    )
    remote_presence = BooleanField(
        lazy_gettext("Call a remote ticket only after its check-in"), default=True
    )
    remote_max_passes = IntegerField(
        lazy_gettext("Turns an unchecked remote ticket may miss before it expires"),
        validators=[Optional(), NumberRange(0, 20)],
        default=3,
    )


def _hours_error(message: str, detail: str, **params: str) -> PoradovnikError:
    """Hours that cannot be read (``invalid_hours``): ``detail`` says why, of ``part``."""
    return PoradovnikError(message, code="invalid_hours", detail=detail, params=params)


def parse_hours(text: str) -> OpeningHours:
    """Read hours as the pages show them: ``always``, or ``Mon 08:00-12:00 13:00-15:00; Tue …``.

    Raises :class:`PoradovnikError` (``invalid_hours``) saying what is wrong.
    """
    text = text.strip()
    if text.lower() == "always":
        return OpeningHours()
    days: dict[int, tuple[tuple[time, time], ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, spans_text = part.partition(" ")
        if name.capitalize() not in _DAYS:
            raise _hours_error(
                f"{name!r} is not a weekday ({', '.join(_DAYS)})",
                "day",
                part=name,
                days=", ".join(_DAYS),
            )
        spans = []
        for span in spans_text.split():
            match = _SPAN_RE.fullmatch(span)
            if not match:
                raise _hours_error(f"{span!r} is not a span like 08:00-12:00", "span", part=span)
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            try:
                start, end = time(h1, m1), time(h2, m2)
            except ValueError:
                raise _hours_error(f"{span!r} is not a time of day", "time", part=span) from None
            if start >= end:
                raise _hours_error(f"{span!r} ends before it starts", "order", part=span)
            spans.append((start, end))
        if not spans:
            raise _hours_error(f"{name} has no opening span", "empty", part=name)
        days[_DAYS.index(name.capitalize())] = tuple(spans)
    return OpeningHours(days=days, always=False)


@bp.get("/services")
@admin_required
def services() -> str:
    """Every service, with a link to change it."""
    current = hub()
    rows = queue_rows(current.queue, "sk")
    return render_template(
        "admin/services.html", rows=rows, bookable=current.appointments.bookable()
    )


@bp.route("/services/new", methods=["GET", "POST"], endpoint="service_new")
@bp.route("/services/<code>", methods=["GET", "POST"])
@admin_required
def service(code: str | None = None) -> Page:
    """Create or change a service; it reaches the kiosks and displays at once."""
    queue = hub().queue
    current = queue.service(code) if code else None
    if code and current is None:
        abort(404)
    form = ServiceForm(obj=_service_fields(current) if current else None)
    signups = hub().signups
    if form.validate_on_submit():
        try:
            hours = parse_hours(form.hours.data or "")
        except PoradovnikError as exc:
            form.hours.errors = [refusal_text(exc)]
        else:
            names: dict[str, str] = {
                lang: value
                for lang in LANGUAGES
                if (value := (getattr(form, f"name_{lang}").data or "").strip())
            }
            edited = Service(
                code=current.code if current else (form.code.data or ""),
                prefix=form.prefix.data or "",
                names=names,
                hours=hours,
                daily_limit=form.daily_limit.data,
                open=bool(form.open.data),
                weight=current.weight if current else 1.0,
                default_service_time_s=(form.service_time_min.data or 5) * 60,
                priority_allowed=bool(form.priority_allowed.data),
                remote=RemoteRules(
                    enabled=bool(form.remote_enabled.data),
                    daily_quota=form.remote_quota.data or 50,
                    stop_before_close_s=(form.remote_stop_min.data or 0) * 60,
                    presence=bool(form.remote_presence.data),
                    max_passes=form.remote_max_passes.data or 0,
                ),
            )
            try:
                queue.save_service(edited)
                signups.set_desk(edited.code, bool(form.desk.data))
            except (QueueError, PoradovnikError) as exc:
                flash(refusal_text(exc), "error")
            else:
                before = _service_view(current) if current else None
                summary = audit.changes(before, _service_view(edited))
                record("service", edited.code, "update" if current else "create", summary)
                flash(gettext("Saved service %(code)s.", code=edited.code), "notice")
                return redirect(url_for("admin.services"))
    return render_template("admin/service.html", form=form, current=current)


def _service_view(service: Service) -> dict[str, object]:
    """What the audit compares of a service."""
    return {
        "prefix": service.prefix,
        **{f"name_{lang}": service.names.get(lang) for lang in LANGUAGES},
        "hours": service.hours.describe(),
        "daily_limit": service.daily_limit,
        "service_time_s": service.default_service_time_s,
        "open": service.open,
    }


def _service_fields(service: Service) -> Any:
    class Fields:
        code = service.code
        prefix = service.prefix
        hours = service.hours.describe()
        daily_limit = service.daily_limit
        service_time_min = max(1, service.default_service_time_s // 60)
        open = service.open
        priority_allowed = service.priority_allowed
        desk = hub().signups.is_desk(service.code)
        remote_enabled = service.remote.enabled
        remote_quota = service.remote.daily_quota
        remote_stop_min = service.remote.stop_before_close_s // 60
        remote_presence = service.remote.presence
        remote_max_passes = service.remote.max_passes

    for lang in LANGUAGES:
        setattr(Fields, f"name_{lang}", service.names.get(lang, ""))
    return Fields


# -- counters ----------------------------------------------------------------------


class CounterForm(FlaskForm):
    """A counter's name and the services it serves, in order of preference."""

    id = StringField(lazy_gettext("Id"), validators=[DataRequired(), Length(max=64), Regexp(_ID)])
    name = StringField(lazy_gettext("Name"), validators=[DataRequired(), Length(max=128)])
    services = StringField(lazy_gettext("Services"), validators=[DataRequired(), Length(max=400)])


@bp.get("/counters")
@admin_required
def counters() -> str:
    """Every counter with its state."""
    return render_template("admin/counters.html", counters=hub().queue.counters())


@bp.route("/counters/new", methods=["GET", "POST"], endpoint="counter_new")
@bp.route("/counters/<counter_id>", methods=["GET", "POST"])
@admin_required
def counter(counter_id: str | None = None) -> Page:
    """Create or change a counter (its queue state is kept)."""
    queue = hub().queue
    current = queue.counter(counter_id) if counter_id else None
    if counter_id and current is None:
        abort(404)
    form = CounterForm(
        data={"id": current.id, "name": current.name, "services": ", ".join(current.services)}
        if current
        else None
    )
    if form.validate_on_submit():
        codes = tuple(c.strip() for c in (form.services.data or "").split(",") if c.strip())
        edited = Counter(
            id=current.id if current else (form.id.data or ""),
            name=form.name.data or "",
            services=codes,
        )
        try:
            queue.save_counter(edited)
        except (QueueError, PoradovnikError) as exc:
            flash(refusal_text(exc), "error")
        else:
            before = {"name": current.name, "services": current.services} if current else None
            summary = audit.changes(before, {"name": edited.name, "services": edited.services})
            record("counter", edited.id, "update" if current else "create", summary)
            flash(gettext("Saved counter %(id)s.", id=edited.id), "notice")
            return redirect(url_for("admin.counters"))
    return render_template("admin/counter.html", form=form, current=current)


# -- closures ----------------------------------------------------------------------

CLOSURE_ID_RE: Final = re.compile(r"[0-9a-f]{32}")
"""Closure ids are UUIDs in hex; anything else is not looked up."""


class ClosureForm(FlaskForm):
    """A day, or part of one, when the office or some of its services close."""

    day = DateField(
        lazy_gettext("Day"),
        validators=[DataRequired(message=lazy_gettext("Give the day as YYYY-MM-DD."))],
    )
    start = TimeField(lazy_gettext("From (empty: the start of the day)"), validators=[Optional()])
    end = TimeField(lazy_gettext("Until (empty: the end of the day)"), validators=[Optional()])
    reason = StringField(
        lazy_gettext("Reason (shown to citizens)"),
        validators=[Optional(), Length(max=MAX_CLOSURE_REASON)],
    )
    services = SelectMultipleField(lazy_gettext("Services closed (none chosen: the whole office)"))

    def validate_end(self, field: TimeField) -> None:
        """A part of a day ends after it starts."""
        if field.data is not None and self.start.data is not None and field.data <= self.start.data:
            raise ValidationError(gettext("The closure must end after it starts."))


@bp.route("/closures", methods=["GET", "POST"])
@admin_required
def closures() -> Page:
    """The office's closures from today on; add one (a whole day or part of one).

    A form that does not validate, or a closure the queue refuses (a day that has
    passed, say), is answered 400 with the reason on the page.
    """
    queue = hub().queue
    form = ClosureForm()
    form.services.choices = [(s.code, s.name("sk")) for s in queue.services()]
    status = 200
    if form.is_submitted():
        status = 400
        if form.validate():
            closure = Closure(
                day=form.day.data,
                start=form.start.data,
                end=form.end.data,
                reason=(form.reason.data or "").strip(),
                services=tuple(form.services.data or ()),
            )
            try:
                added = queue.add_closure(closure)
            except QueueError as exc:
                form.day.errors = [refusal_text(exc)]
            else:
                record("closure", added.id, "create", _closure_summary(added))
                flash(
                    gettext(
                        "Closed %(day)s %(when)s.",
                        day=closure.day,
                        when=closure_time_filter(closure),
                    ),
                    "notice",
                )
                return redirect(url_for("admin.closures"))
    page = render_template(
        "admin/closures.html",
        form=form,
        closures=queue.closures(),
        names={s.code: s.name("sk") for s in queue.services()},
    )
    return page, status


@bp.post("/closures/<closure_id>/remove")
@admin_required
def remove_closure(closure_id: str) -> BaseResponse:
    """Take a closure away: the services open again as their hours say."""
    FlaskForm().validate_on_submit() or abort(400)
    queue = hub().queue
    if not CLOSURE_ID_RE.fullmatch(closure_id):
        abort(404)
    removed = next((c for c in queue.closures() if c.id == closure_id), None)
    if not queue.remove_closure(closure_id):
        abort(404)
    record("closure", closure_id, "delete", _closure_summary(removed) if removed else "")
    flash(gettext("Removed the closure."), "notice")
    return redirect(url_for("admin.closures"))


def _closure_summary(closure: Closure) -> str:
    """What the audit says of a closure."""
    view = {"when": _closure_text(closure), "reason": closure.reason, "services": closure.services}
    return audit.changes(None, view)


def _closure_text(closure: Closure) -> str:
    if closure.start is None and closure.end is None:
        return f"{closure.day} all day"
    start = closure.start.strftime("%H:%M") if closure.start else "00:00"
    end = closure.end.strftime("%H:%M") if closure.end else "24:00"
    return f"{closure.day} {start}–{end}"


@bp.app_template_filter("closure_time")
def closure_time_filter(closure: Closure) -> str:
    """A closure's part of the day, as the closures page lists it (in the page's language)."""
    if closure.start is None and closure.end is None:
        return str(gettext("all day"))
    return _closure_text(closure).partition(" ")[2]


# -- devices -----------------------------------------------------------------------


class PairForm(FlaskForm):
    """The code a new device shows, and what it becomes."""

    code = StringField(
        lazy_gettext("Pairing code shown by the device"),
        validators=[DataRequired(), Length(max=16)],
    )
    role = SelectField(lazy_gettext("Role"), choices=["kiosk", "display", "counter"])
    counters = StringField(
        lazy_gettext("Counters it acts for (counter panels; ids separated by commas)"),
        validators=[Optional(), Length(max=200)],
    )
    device_id = StringField(
        lazy_gettext("Replaces the device (its id; leave empty for a new device)"),
        validators=[Optional(), Length(max=63)],
    )


@bp.route("/devices", methods=["GET", "POST"])
@admin_required
def devices() -> Page:
    """The devices with broker accounts and what they last reported over MQTT; pairing."""
    current = hub()
    form = PairForm()
    if form.validate_on_submit():
        role = cast(Role, form.role.data)
        counters = [c.strip() for c in (form.counters.data or "").split(",") if c.strip()]
        try:
            paired = pair_device(
                current.settings,
                form.code.data or "",
                role=role,
                counters=counters,
                device_id=form.device_id.data or None,
                online_wait_s=PAIRING_ONLINE_WAIT_S,
            )
        except PoradovnikError as exc:
            flash(refusal_text(exc), "error")
        else:
            name = paired.account.username
            view = {"role": form.role.data, "counters": counters, "replaces": form.device_id.data}
            record("device", name, "pair", audit.changes(None, view))
            message = (
                gettext("Paired %(name)s as %(role)s; it is online.", name=name, role=role)
                if paired.online
                else gettext(
                    "Paired %(name)s as %(role)s; it will come online in a moment.",
                    name=name,
                    role=role,
                )
            )
            flash(message, "notice")
            return redirect(url_for("admin.devices"))
    seen = dict(current.bridge.devices) if current.bridge is not None else {}
    accounts = current.queue.broker_accounts()
    rows: list[tuple[str, str | None, tuple[str, ...], DeviceView | None]] = []
    for account in accounts:
        device_id = account.device_id or account.username
        rows.append((account.username, account.role, account.counters, seen.pop(device_id, None)))
    rows += [(view.device_id, None, (), view) for view in seen.values()]
    return render_template("admin/devices.html", rows=rows, form=form)


# -- users and tokens ---------------------------------------------------------------


class UserForm(FlaskForm):
    """A user's name, role, (new) password, and the counters and services a clerk works."""

    username = StringField(lazy_gettext("User name"), validators=[DataRequired(), Length(max=64)])
    role = SelectField(lazy_gettext("Role"), choices=list(USER_ROLES))
    password = PasswordField(
        lazy_gettext("New password"), validators=[Optional(), Length(min=10, max=256)]
    )
    active = BooleanField(lazy_gettext("May sign in"), default=True)
    counters = SelectMultipleField(lazy_gettext("Counters the clerk works at (none chosen: any)"))
    services = SelectMultipleField(lazy_gettext("Services the clerk serves (none chosen: any)"))


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users() -> Page:
    """List users; add one or change one's role, password, access, counters and services.

    ``?user=<name>`` fills the form with that user's current set-up.
    """
    current = hub()
    editing = current.users.get(request.args.get("user", "")[:64])
    form = UserForm(
        data={
            "username": editing.username,
            "role": editing.role,
            "active": editing.active,
            "counters": list(editing.counters or ()),
            "services": list(editing.services or ()),
        }
        if editing is not None and request.method == "GET"
        else None
    )
    form.counters.choices = [(c.id, c.name) for c in current.queue.counters()]
    form.services.choices = [(s.code, s.name("sk")) for s in current.queue.services()]
    if form.validate_on_submit():
        username = form.username.data or ""
        role = cast(UserRole, form.role.data)
        try:
            existing = current.users.get(username)
            if existing is None:
                if not form.password.data:
                    raise PoradovnikError("a new user needs a password", code="password_needed")
                current.users.add(username, form.password.data, role)
            elif form.password.data:
                current.users.set_password(username, form.password.data)
            current.users.set_role(username, role, active=bool(form.active.data))
            if form.password.data or not form.active.data:
                current.queue.clerks.leave(username)  # their sessions ended: so do their seats
            current.users.assign(
                username,
                tuple(form.counters.data or ()) or None,
                tuple(form.services.data or ()) or None,
            )
            if username == current_user.user.username:
                # A new password ended this session too: keep the admin signed in.
                changed = current.users.get(username)
                if changed is not None and changed.active:
                    login_user(LoginUser(changed))
        except PoradovnikError as exc:
            flash(refusal_text(exc), "error")
        else:
            saved = current.users.get(username)
            assert saved is not None
            summary = audit.changes(_user_view(existing) if existing else None, _user_view(saved))
            if existing is not None and form.password.data:
                summary = "; ".join(filter(None, (summary, "password: changed")))
            record("user", username, "update" if existing else "create", summary)
            flash(gettext("Saved user %(name)s.", name=username), "notice")
            return redirect(url_for("admin.users"))
    return render_template("admin/users.html", form=form, users=current.users.all())


def _user_view(user: User) -> dict[str, object]:
    """What the audit compares of a user (never the password)."""
    return {
        "role": user.role,
        "active": user.active,
        "counters": user.counters or "any",
        "services": user.services or "any",
    }


class TokenForm(FlaskForm):
    """A city system's name and what its token may do."""

    name = StringField(lazy_gettext("System"), validators=[DataRequired(), Length(max=64)])
    eservice = BooleanField("eservice")
    counters = BooleanField("counters")
    statistics = BooleanField("statistics")


@bp.route("/tokens", methods=["GET", "POST"])
@admin_required
def tokens() -> Page:
    """API tokens of city systems; a new token is shown once."""
    current = hub()
    form = TokenForm()
    token = None
    if form.validate_on_submit():
        scopes = tuple(s for s in SCOPES if getattr(form, s).data)
        try:
            token = current.tokens.issue(form.name.data or "", scopes)
        except PoradovnikError as exc:
            flash(refusal_text(exc), "error")
        else:
            record("token", form.name.data or "", "issue", audit.changes(None, {"scopes": scopes}))
    return render_template("admin/tokens.html", form=form, tokens=current.tokens.all(), token=token)


@bp.post("/tokens/<name>/revoke")
@admin_required
def revoke_token(name: str) -> BaseResponse:
    """Take a system's token away."""
    FlaskForm().validate_on_submit() or abort(400)
    if hub().tokens.revoke(name):
        record("token", name, "revoke", "")
    flash(gettext("Revoked the token of %(name)s.", name=name), "notice")
    return redirect(url_for("admin.tokens"))


# -- branding ----------------------------------------------------------------------


class BrandingForm(FlaskForm):
    """How the portal presents the office."""

    office_name = StringField(
        lazy_gettext("Office name"), validators=[DataRequired(), Length(max=80)]
    )
    accent_color = StringField(
        lazy_gettext("Accent colour"), validators=[Regexp(r"^#[0-9a-fA-F]{6}$")]
    )
    languages = StringField(lazy_gettext("Languages"), validators=[DataRequired(), Length(max=20)])
    footer = StringField(lazy_gettext("Footer"), validators=[Optional(), Length(max=200)])


@bp.route("/branding", methods=["GET", "POST"])
@admin_required
def branding() -> Page:
    """The office's name, colour, languages and footer on the portal."""
    config = hub().config
    now = config.branding()
    form = BrandingForm(
        data={
            "office_name": now.office_name,
            "accent_color": now.accent_color,
            "languages": ", ".join(now.languages),
            "footer": now.footer,
        }
    )
    if form.validate_on_submit():
        langs = tuple(x.strip() for x in (form.languages.data or "").split(",") if x.strip())
        edited = Branding(
            office_name=(form.office_name.data or "").strip(),
            accent_color=form.accent_color.data or "",
            languages=langs,
            footer=(form.footer.data or "").strip(),
        )
        try:
            config.save(edited)
        except PoradovnikError as exc:
            flash(refusal_text(exc), "error")
        else:
            summary = audit.changes(dataclasses.asdict(now), dataclasses.asdict(edited))
            record("branding", "site", "update", summary)
            flash(gettext("Saved the branding."), "notice")
            return redirect(url_for("admin.branding"))
    return render_template("admin/branding.html", form=form)


# -- appointments ------------------------------------------------------------------


class BookingRulesForm(FlaskForm):
    """A service's booking rules."""

    enabled = BooleanField(lazy_gettext("Takes appointments"))
    slot_min = IntegerField(
        lazy_gettext("Slot length (min)"), validators=[DataRequired(), NumberRange(5, 240)]
    )
    seats = IntegerField(
        lazy_gettext("Seats per slot"), validators=[InputRequired(), NumberRange(0, 50)]
    )
    seats_by_hour = StringField(
        lazy_gettext("Seats by weekday and hour"), validators=[Optional(), Length(max=1000)]
    )
    horizon_days = IntegerField(
        lazy_gettext("Bookings open (days ahead)"),
        validators=[InputRequired(), NumberRange(0, 365)],
    )
    cancel_before_min = IntegerField(
        lazy_gettext("Cancel or move until (min before)"),
        validators=[InputRequired(), NumberRange(0, 7 * 24 * 60)],
    )
    hold_min = IntegerField(
        lazy_gettext("Hold a slot (min)"), validators=[DataRequired(), NumberRange(1, 60)]
    )


@bp.route("/booking/<code>", methods=["GET", "POST"])
@admin_required
def booking_rules(code: str) -> Page:
    """A service's booking rules: slots, seats by weekday and hour, window, deadlines."""
    current = hub()
    service = current.queue.service(code)
    if service is None:
        abort(404)
    rules = current.appointments.rules(code)
    form = BookingRulesForm(
        data={
            "enabled": rules.enabled,
            "slot_min": rules.slot_min,
            "seats": rules.seats,
            "seats_by_hour": rules.describe_seats(),
            "horizon_days": rules.horizon_days,
            "cancel_before_min": rules.cancel_before_min,
            "hold_min": rules.hold_min,
        }
        if request.method == "GET"
        else None
    )
    if form.validate_on_submit():
        try:
            edited = BookingRules(
                service=code,
                enabled=bool(form.enabled.data),
                slot_min=form.slot_min.data or 0,
                seats=form.seats.data or 0,
                seats_by_hour=parse_seats(form.seats_by_hour.data or ""),
                horizon_days=form.horizon_days.data or 0,
                cancel_before_min=form.cancel_before_min.data or 0,
                hold_min=form.hold_min.data or 0,
            )
            current.appointments.save_rules(edited)
        except BookingError as exc:
            form.seats_by_hour.errors = [refusal_text(exc)]
        else:
            summary = audit.changes(_rules_view(rules), _rules_view(edited))
            record("booking_rules", code, "update", summary)
            flash(gettext("Saved the booking rules of %(code)s.", code=code), "notice")
            return redirect(url_for("admin.services"))
    return render_template("admin/booking_rules.html", form=form, service=service)


def _rules_view(rules: BookingRules) -> dict[str, object]:
    """What the audit compares of a service's booking rules."""
    view = {f.name: getattr(rules, f.name) for f in dataclasses.fields(rules)}
    view["seats_by_hour"] = rules.describe_seats()
    del view["service"]
    return view


class PhoneBookingForm(FlaskForm):
    """A booking the admin makes for someone who phoned in."""

    slot = SelectField(lazy_gettext("Time"), choices=[], validate_choice=False)
    name = StringField(
        lazy_gettext("Name or initials"), validators=[DataRequired(), Length(max=80)]
    )
    email = StringField(lazy_gettext("E-mail (optional)"), validators=[Optional(), Length(max=254)])


@bp.route("/appointments", methods=["GET", "POST"])
@admin_required
def appointments() -> Page:
    """A day's bookings of a service, and booking for a phone caller."""
    current = hub()
    book = current.appointments
    bookable = book.bookable()
    service = request.args.get("service", "")
    if service not in bookable:
        service = bookable[0] if bookable else ""
    day = _day_arg(current.queue.today())
    form = PhoneBookingForm()
    slots: list[Slot] = []
    rows = []
    if service:
        try:
            slots = [s for s in book.slots(service, day, admin=True) if s.free > 0]
        except BookingError as exc:
            flash(refusal_text(exc), "error")
        rows = book.day_bookings(service, day)
    form.slot.choices = [(s.starts_at.isoformat(), _local_time(s.starts_at)) for s in slots]
    if service and form.validate_on_submit():
        start = parse_slot(form.slot.data)
        contact = Contact(form.name.data or "", form.email.data or None, "sk")
        try:
            if start is None:
                raise BookingError("no_such_slot", "choose a time from the list")
            booked = book.book(service, start, contact, client=None, admin=True)
        except BookingError as exc:
            flash(refusal_text(exc), "error")
        else:
            when = f"{day.isoformat()} {_local_time(booked.starts_at)}"
            record("appointment", booked.code, "book", f"service: {service}; slot: {when}")
            flash(
                gettext(
                    "Booked %(time)s: code %(code)s.",
                    time=_local_time(booked.starts_at),
                    code=booked.code,
                ),
                "notice",
            )
            return redirect(url_for("admin.appointments", service=service, date=day.isoformat()))
    names = {
        code: (s.name("sk") if (s := current.queue.service(code)) else code) for code in bookable
    }
    return render_template(
        "admin/appointments.html",
        services=names,
        service=service,
        day=day,
        rows=rows,
        form=form,
        button=FlaskForm(),
        local_time=_local_time,
    )


@bp.post("/appointments/<code>/cancel")
@admin_required
def appointment_cancel(code: str) -> BaseResponse:
    """Cancel a booking (whatever the deadline)."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        cancelled = hub().appointments.cancel(code, admin=True)
    except BookingError as exc:
        flash(refusal_text(exc), "error")
        return redirect(url_for("admin.appointments"))
    day = cancelled.starts_at.astimezone(hub().queue.timezone).date()
    when = f"{day.isoformat()} {_local_time(cancelled.starts_at)}"
    record("appointment", code, "cancel", f"service: {cancelled.service}; slot: {when}")
    flash(gettext("Cancelled booking %(code)s.", code=code), "notice")
    return redirect(url_for("admin.appointments", service=cancelled.service, date=day.isoformat()))


def _day_arg(default: date) -> date:
    """The page's ``?date=`` (``YYYY-MM-DD``), or ``default`` when missing or not a date."""
    return parse_day(request.args.get("date")) or default


def _local_time(moment: datetime) -> str:
    return f"{moment.astimezone(hub().queue.timezone):%H:%M}"


# -- statistics ----------------------------------------------------------------------


def _range() -> tuple[date, date]:
    today = hub().queue.today()
    try:
        end = date.fromisoformat(request.args.get("to") or today.isoformat())
        start = date.fromisoformat(
            request.args.get("from") or (end - timedelta(days=6)).isoformat()
        )
    except ValueError:
        abort(400)
    return start, end


@bp.get("/statistics")
@login_required
def statistics() -> str:
    """Waiting and service times, the target share and no-shows, with charts."""
    current = hub()
    start, end = _range()
    figures = current.queue.statistics(
        start, end, target_wait_s=current.settings.web.target_wait_min * 60
    )
    names = {s.code: s.name("sk") for s in current.queue.services()}
    counter_names = {c.id: c.name for c in current.queue.counters()}
    return render_template(
        "admin/statistics.html",
        s=figures,
        ratings=current.feedback.summary(start, end),
        signups=current.signups.per_month(start, end),
        clerk_figures=_clerk_figures(start, end) if current_user.is_admin else None,
        names=names,
        counter_names=counter_names,
        charts=chart_data(figures, names, counter_names),
        on_time_min=stats.ON_TIME_S // 60,
        notices=current.queue.notices(start, end),
    )


def chart_data(
    figures: stats.Statistics, names: Mapping[str, str], counter_names: Mapping[str, str]
) -> dict[str, list[tuple[str, float]]]:
    """The bars of the statistics page's charts: (label, value) in minutes or tickets.

    A group without the figure (a service nobody was called for yet) gets no bar: a
    bar of 0 would claim a wait or visit of no time.
    """

    def points(
        groups: list[stats.Group],
        value: Callable[[stats.Group], float | None],
        labels: Mapping[str, str],
    ) -> list[tuple[str, float]]:
        bars = ((labels.get(g.key, g.key), value(g)) for g in groups)
        return [(label, v) for label, v in bars if v is not None]

    def in_min(seconds: float | None) -> float | None:
        return None if seconds is None else seconds / 60

    return {
        "service_wait": points(figures.per_service, lambda g: in_min(g.mean_wait_s), names),
        "service_time": points(figures.per_service, lambda g: in_min(g.mean_service_s), names),
        "counter_time": points(
            figures.per_counter, lambda g: in_min(g.mean_service_s), counter_names
        ),
        "hour_tickets": points(figures.per_hour, lambda g: g.tickets, {}),
        "hour_wait": points(figures.per_hour, lambda g: in_min(g.mean_wait_s), {}),
    }


@bp.get("/statistics.csv")
@login_required
def statistics_csv() -> Response:
    """Every ticket of the range as CSV, for a spreadsheet."""
    start, end = _range()
    return csv_download(stats.to_csv(hub().queue.visits(start, end)), "tickets", start, end)


def csv_download(body: str, name: str, start: date, end: date) -> Response:
    """``body`` as a CSV download named ``<name>-<start>-<end>.csv`` (the city's too)."""
    return Response(
        body,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{start}-{end}.csv"'},
    )


@bp.get("/statistics/notices.csv")
@login_required
def notices_csv() -> Response:
    """Citizens' notices of the range per channel (sent, failed, dropped) as CSV."""
    start, end = _range()
    return csv_download(stats.notices_csv(hub().queue.notices(start, end)), "notices", start, end)


@bp.get("/statistics/ratings.csv")
@login_required
def ratings_csv() -> Response:
    """Every rating of the range's visits as CSV (comments included)."""
    start, end = _range()
    return csv_download(feedback.to_csv(hub().feedback.ratings(start, end)), "ratings", start, end)


@bp.get("/statistics/signups.csv")
@login_required
def signups_csv() -> Response:
    """E-service sign-ups per month and e-service as CSV."""
    start, end = _range()
    return csv_download(signups.to_csv(hub().signups.per_month(start, end)), "signups", start, end)


@bp.get("/feedback")
@admin_required
def feedback_comments() -> str:
    """The citizens' ratings with a comment, newest first, for the range of days."""
    start, end = _range()
    rows = [r for r in hub().feedback.ratings(start, end) if r.comment]
    names = {s.code: s.name("sk") for s in hub().queue.services()}
    return render_template("admin/feedback.html", rows=rows, names=names, start=start, end=end)


class SignUpForm(FlaskForm):
    """The e-services a desk's clerk can sign citizens up for, one per line."""

    eservices = TextAreaField(
        lazy_gettext("E-services (one per line)"),
        validators=[Length(max=signups.MAX_ESERVICES * (signups.MAX_NAME + 2))],
    )


@bp.route("/signups", methods=["GET", "POST"])
@admin_required
def signup_setup() -> Page:
    """The list of e-services that registration desks sign citizens up for."""
    book = hub().signups
    setup = book.setup()
    form = SignUpForm(data={"eservices": "\n".join(setup.eservices)})
    if form.validate_on_submit():
        lines = (form.eservices.data or "").splitlines()
        names = tuple(name for line in lines if (name := line.strip()))
        try:
            book.save(signups.SignUpSetup(desks=setup.desks, eservices=names))
        except PoradovnikError as exc:
            form.eservices.errors = [refusal_text(exc)]
        else:
            flash(gettext("Saved the e-services."), "notice")
            return redirect(url_for("admin.signup_setup"))
    desks = [s for s in hub().queue.services() if s.code in setup.desks]
    return render_template("admin/signups.html", form=form, desks=desks)


def _clerk_figures(start: date, end: date) -> list[clerks.ClerkFigures]:
    queue = hub().queue
    return clerks.clerk_statistics(
        queue.store, start, end, timezone=queue.timezone, now=queue.clock()
    )


@bp.get("/statistics/clerks.csv")
@admin_required
def clerk_statistics_csv() -> Response:
    """Each clerk's figures of the range as CSV (admins only)."""
    start, end = _range()
    return csv_download(clerks.to_csv(_clerk_figures(start, end)), "clerks", start, end)


# -- audit -------------------------------------------------------------------------

AUDIT_PAGE: Final = 50
"""Entries per page of the audit."""
MAX_AUDIT_TEXT: Final = 100
"""The longest text searched for in the audit."""
MAX_AUDIT_PAGE: Final = 10_000
"""The last page number asked for that is not refused (half a million entries)."""


def _audit_filter() -> audit.AuditFilter:
    """The audit page's filter from its query; 400 for a value that cannot be one.

    ``kind``, ``actor``, ``from`` and ``to`` (local days) and ``q`` (a text).
    """
    args = request.args
    kind = args.get("kind", "")
    text = args.get("q", "").strip()
    actor = args.get("actor", "")
    if (kind and kind not in audit.KINDS) or len(text) > MAX_AUDIT_TEXT or len(actor) > 128:
        abort(400)
    zone = hub().queue.timezone
    try:
        since = date.fromisoformat(args["from"]) if args.get("from") else None
        until = date.fromisoformat(args["to"]) if args.get("to") else None
    except ValueError:
        abort(400)
    return audit.AuditFilter(
        kind=kind or None,
        actor=actor or None,
        since=datetime.combine(since, time.min, tzinfo=zone) if since else None,
        until=datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone) if until else None,
        text=text or None,
    )


@bp.get("/audit")
@admin_required
def audit_log() -> str:
    """Who changed which part of the set-up, and when: filtered, a page at a time."""
    wanted = _audit_filter()
    page = request.args.get("page", 1, type=int)
    if not 1 <= page <= MAX_AUDIT_PAGE:
        abort(400)
    book = hub().audit
    entries, total = book.find(wanted, offset=(page - 1) * AUDIT_PAGE, limit=AUDIT_PAGE)
    query = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "admin/audit.html",
        entries=entries,
        total=total,
        page=page,
        pages=max(1, -(-total // AUDIT_PAGE)),
        query=query,
        kinds=audit.KINDS,
        actors=book.actors(),
        local=lambda at: f"{at.astimezone(hub().queue.timezone):%Y-%m-%d %H:%M:%S}",
    )


@bp.get("/audit.csv")
@admin_required
def audit_csv() -> Response:
    """The audit entries the filter picks, as CSV."""
    entries, _ = hub().audit.find(_audit_filter())
    return Response(
        audit.to_csv(entries),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


@bp.app_template_filter("minutes")
def minutes_filter(seconds: float | None) -> str:
    """Seconds as ``m:ss`` (or an en dash when unknown)."""
    if seconds is None:
        return "–"
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"


@bp.app_template_filter("percent")
def percent_filter(share: float | None) -> str:
    """A share as a whole percentage (or an en dash when unknown)."""
    return "–" if share is None else f"{round(share * 100)} %"


@bp.app_template_filter("since")
def since_filter(at: datetime | None) -> str:
    """How long ago ``at`` was, for the devices page."""
    if at is None:
        return "–"
    seconds = int((hub().queue.clock() - at).total_seconds())
    if seconds < 120:
        return str(gettext("%(n)s s", n=seconds))
    return str(gettext("%(n)s min", n=seconds // 60))
