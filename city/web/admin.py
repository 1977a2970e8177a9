"""The city's admin pages at ``/admin``: every branch the user may see, on one page each.

- the **dashboard**: per branch, people waiting and the expected wait per service, the
  counters open or paused with their current ticket, whether the hub is online, and
  how far the city holds the branch's history (its last stored sequence, and how late
  the newest row reached the city);
- **devices** of every branch, offline devices and printers low on paper first and
  highlighted;
- **statistics** across branches, the same figures as a branch's own page
  (:mod:`city.stats`), by branch (or by counter for one branch), service and hour,
  with the tickets as CSV;
- the **catalogue** of services the city defines (city admins edit it; managers choose
  whether their branches take it);
- **users** and their roles per branch (city admins).

Every form carries a CSRF token; a user sees only the branches of their roles
(:mod:`city.web.access`). Changes go through :class:`~city.services.CityServices`
(the catalogue is published to the branches from there).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers.response import Response as BaseResponse
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from city import stats
from city.live import DeviceView
from city.web import queries
from city.web.access import (
    LoginUser,
    Refused,
    admin_required,
    allowed_sites,
    chosen_branch,
    managed_sites,
    signed_in,
)
from city.web.context import city
from city.web.extensions import limiter
from city.web.i18n import select_locale
from city.web.portal import directory
from city.web.queries import Held
from city.web.views import BranchView, branch_views
from common.errors import PoradovnikError
from common.i18n import LANGUAGES
from hub.store.rows import hours_from_json, hours_to_json
from hub.web.admin import csv_download, minutes_filter, next_page, parse_hours, percent_filter
from hub.web.refusals import refusal_text
from sync_agent.city_protocol import CatalogueService
from sync_agent.protocol import CounterState

if TYPE_CHECKING:
    from city.store import Branch

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

Page = str | BaseResponse | tuple[str, int]

MAX_RANGE_DAYS: Final = 366
"""The longest range of days the statistics read at once."""

ISO_DAY_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


# -- sign-in ---------------------------------------------------------------------


class LoginForm(FlaskForm):
    """User name and password."""

    username = StringField(lazy_gettext("User name"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=256)])


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: city().settings.web.login_limit, methods=["POST"])
def login() -> Page:
    """Sign in; a wrong name or password gets one message for both (401)."""
    form = LoginForm()
    if form.validate_on_submit():
        assert form.username.data is not None
        assert form.password.data is not None
        user = city().store.authenticate(form.username.data, form.password.data)
        if user is not None:
            login_user(LoginUser(user))
            return redirect(next_page() or url_for("admin.dashboard"))
        return render_template("admin/login.html", form=form, failed=True), 401
    return render_template("admin/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> BaseResponse:
    """Sign out (a POST with the CSRF token, so no link can sign anyone out).

    Every session of the user ends, on every browser, as on the hub.
    """
    city().store.end_sessions(signed_in().username)
    logout_user()
    return redirect(url_for("admin.login"))


# -- branches the user sees ------------------------------------------------------------


def _visible() -> list[BranchView]:
    """The branches the signed-in user may see, with their live state."""
    return branch_views(
        directory().branches(),
        city().live,
        select_locale(),
        sites=allowed_sites(signed_in()),
    )


def branch_arg() -> str | None:
    """The branch a page is asked for (``?branch=``): ``None`` for all.

    400, 404 or 403 as :func:`~city.web.access.chosen_branch` says.
    """
    known = (branch.site for branch in directory().branches())
    try:
        return chosen_branch(signed_in(), request.args.get("branch") or None, known)
    except Refused as refused:
        abort(refused.status, description=refused.message)


# -- dashboard -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BranchBoard:
    """One branch on the dashboard."""

    view: BranchView
    counters: list[CounterState]
    held: Held | None
    """How far the city holds its history (``None``: nothing yet)."""


def _boards() -> list[BranchBoard]:
    parts = city()
    live = parts.live.branches()
    progress = queries.held(parts.store.db)
    boards = []
    for view in _visible():
        state = live.get(view.site)
        counters = sorted(state.counters.values(), key=lambda c: c.name) if state else []
        boards.append(BranchBoard(view, counters, progress.get(view.site)))
    return boards


@bp.get("/")
@login_required
def dashboard() -> str:
    """Every branch the user sees: waiting, counters, hub online, the history's progress."""
    return render_template("admin/dashboard.html", boards=_boards())


@bp.get("/dashboard/fragment")
@login_required
def dashboard_fragment() -> str:
    """The dashboard's list alone, for ``city.js``'s refresh."""
    return render_template("admin/_dashboard.html", boards=_boards())


# -- devices ---------------------------------------------------------------------------


def _devices(view: BranchView) -> list[DeviceView]:
    """A branch's devices, those that need someone first (offline, low on paper)."""
    state = city().live.branch(view.site)
    devices = state.devices.values() if state is not None else ()
    return sorted(devices, key=lambda d: (d.online and not d.paper_low, d.id))


@bp.get("/devices")
@login_required
def devices() -> str:
    """Every device of every branch the user sees; offline ones and low paper highlighted."""
    rows = [(view, _devices(view)) for view in _visible()]
    return render_template("admin/devices.html", rows=rows)


# -- statistics ------------------------------------------------------------------------


def _day(name: str) -> date | None:
    text = request.args.get(name) or None
    if text is None:
        return None
    if not ISO_DAY_RE.fullmatch(text):
        abort(400, description=f"{name}: a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(400, description=f"{name}: no such date")


def date_range(zone: ZoneInfo) -> tuple[date, date]:
    """The range asked for, ``?from=`` … ``?to=`` (default: the 7 days to today).

    400 beyond :data:`MAX_RANGE_DAYS` or for a date that is not one.
    """
    end = _day("to") or datetime.now(zone).date()
    start = _day("from") or end - timedelta(days=6)
    if (end - start).days >= MAX_RANGE_DAYS:
        abort(400, description=f"at most {MAX_RANGE_DAYS} days at once")
    return start, end


def city_figures(
    sites: frozenset[str] | None, branch: str | None
) -> tuple[stats.CityStatistics, ZoneInfo]:
    """The statistics of the request's range for ``branch`` or the ``sites`` allowed."""
    parts = city()
    zone = ZoneInfo(parts.settings.site.timezone)
    start, end = date_range(zone)
    figures = stats.compute(
        parts.store.db,
        start,
        end,
        timezone=zone,
        target_wait_s=parts.settings.web.target_wait_min * 60,
        sites=sites,
        branch=branch,
    )
    return figures, zone


def tickets_csv(sites: frozenset[str] | None, branch: str | None) -> Response:
    """The tickets of the request's range as a CSV download."""
    parts = city()
    start, end = date_range(ZoneInfo(parts.settings.site.timezone))
    chosen = [branch] if branch is not None else sites
    body = stats.to_csv(stats.visits(parts.store.db, start, end, sites=chosen))
    return csv_download(body, f"tickets-{branch or 'city'}", start, end)


@bp.get("/statistics")
@login_required
def statistics() -> str:
    """The branch's figures across branches: by branch (or counter), service and hour."""
    branch = branch_arg()
    figures, _zone = city_figures(allowed_sites(signed_in()), branch)
    views = _visible()
    names = {view.site: view.name for view in views}
    return render_template(
        "admin/statistics.html", s=figures, branches=views, names=names, chosen=branch
    )


@bp.get("/statistics.csv")
@login_required
def statistics_csv() -> Response:
    """Every ticket of the range (of the branches shown) as CSV, the branch first."""
    return tickets_csv(allowed_sites(signed_in()), branch_arg())


# The hub's filters, for the statistics page the two roles share.
bp.add_app_template_filter(minutes_filter, "minutes")
bp.add_app_template_filter(percent_filter, "percent")


# -- catalogue -------------------------------------------------------------------------


class ServiceForm(FlaskForm):
    """A service of the city's catalogue."""

    code = StringField(
        lazy_gettext("Code"),
        validators=[DataRequired(), Length(max=64), Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")],
    )
    prefix = StringField(
        lazy_gettext("Prefix"), validators=[DataRequired(), Length(max=3), Regexp(r"^[A-Z]+$")]
    )
    name_sk = StringField("sk", validators=[DataRequired(), Length(max=80)])
    name_cs = StringField("cs", validators=[Optional(), Length(max=80)])
    name_uk = StringField("uk", validators=[Optional(), Length(max=80)])
    name_en = StringField("en", validators=[Optional(), Length(max=80)])
    hours = StringField(
        lazy_gettext("Opening hours"),
        validators=[DataRequired(), Length(max=400)],
        default="always",
    )


def _catalogue_sites() -> frozenset[str] | None:
    """The branches whose catalogue choice the user sets (``None``: all); 403 for none."""
    managed = managed_sites(signed_in())
    if managed is not None and not managed:
        abort(403)
    return managed


def _catalogue_page(form: ServiceForm, status: int = 200) -> tuple[str, int]:
    managed = _catalogue_sites()
    current = city().store.catalogue()
    services = list(current.services) if current is not None else []
    live = city().live.branches()
    branches = [
        (branch, live[branch.site].catalogue if branch.site in live else None)
        for branch in directory().branches()
        if managed is None or branch.site in managed
    ]
    page = render_template(
        "admin/catalogue.html",
        catalogue=current,
        services=[(s, hours_from_json(s.hours).describe()) for s in services],
        branches=branches,
        form=form,
        editable=signed_in().city_admin,
        languages=LANGUAGES,
    )
    return page, status


@bp.get("/catalogue")
@login_required
def catalogue() -> Page:
    """The city's services (names in every language, prefix, hours) and who takes them."""
    return _catalogue_page(ServiceForm())


def _set_services(services: Iterable[CatalogueService], done: str) -> Page:
    from city.store import CityError  # noqa: PLC0415 (the store's refusal)

    try:
        city().set_catalogue(services)
    except CityError as exc:
        flash(str(exc), "error")
        return _catalogue_page(ServiceForm(), 409)
    log.info("%s by %s", done, signed_in().username)
    flash(done, "notice")
    return redirect(url_for("admin.catalogue"))


@bp.post("/catalogue/services")
@admin_required
def catalogue_service() -> Page:
    """Add a service to the catalogue, or replace the one with its code (city admins)."""
    form = ServiceForm()
    if not form.validate_on_submit():
        return _catalogue_page(form, 400)
    try:
        hours = hours_to_json(parse_hours(form.hours.data or ""))
    except PoradovnikError as exc:
        form.hours.errors = [refusal_text(exc)]
        return _catalogue_page(form, 400)
    names = {lang: text for lang in LANGUAGES if (text := getattr(form, f"name_{lang}").data)}
    assert form.code.data is not None
    assert form.prefix.data is not None
    edited = CatalogueService(
        code=form.code.data, prefix=form.prefix.data, names=names, hours=hours
    )
    current = city().store.catalogue()
    services = [s for s in (current.services if current else []) if s.code != edited.code]
    return _set_services(
        [*services, edited], str(gettext("Saved service %(code)s.", code=edited.code))
    )


@bp.post("/catalogue/services/<code>/remove")
@admin_required
def catalogue_remove(code: str) -> Page:
    """Take a service out of the catalogue (city admins)."""
    _checked_form()
    current = city().store.catalogue()
    services = list(current.services) if current else []
    if all(s.code != code for s in services):
        abort(404)
    return _set_services(
        [s for s in services if s.code != code],
        str(gettext("Removed service %(code)s.", code=code)),
    )


def _checked_form() -> None:
    """400 unless the POST carries its CSRF token (forms with no fields of their own)."""
    if not FlaskForm().validate_on_submit():
        abort(400)


@bp.post("/catalogue/branches")
@login_required
def catalogue_branches() -> BaseResponse:
    """Choose which branches take the catalogue (city admins: all; managers: theirs)."""
    _checked_form()
    managed = _catalogue_sites()
    taking = set(request.form.getlist("site"))
    store = city().store
    for branch in directory().branches():
        if managed is not None and branch.site not in managed:
            continue
        takes = branch.site in taking
        if takes != branch.catalogue:
            store.set_catalogue_branch(branch.site, takes=takes)
            log.info("%s: catalogue %s by %s", branch.site, takes, signed_in().username)
    directory().forget()
    city().branches_changed()
    flash(gettext("Saved which branches take the catalogue."), "notice")
    return redirect(url_for("admin.catalogue"))


# -- users -----------------------------------------------------------------------------

ROLE_CHOICES: Final = ("", "viewer", "manager")


class UserForm(FlaskForm):
    """A new city user (or new password and roles of one)."""

    username = StringField(
        lazy_gettext("User name"),
        validators=[DataRequired(), Length(max=64), Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")],
    )
    password = PasswordField(
        lazy_gettext("Password"), validators=[DataRequired(), Length(min=12, max=256)]
    )
    city_admin = BooleanField(lazy_gettext("City admin (every branch, catalogue and users)"))


def _users_page(form: UserForm, status: int = 200) -> tuple[str, int]:
    parts = city()
    page = render_template(
        "admin/users.html",
        users=parts.store.users(),
        branches=directory().branches(),
        form=form,
        roles=ROLE_CHOICES,
    )
    return page, status


@bp.get("/users")
@admin_required
def users() -> Page:
    """The city's users and their roles per branch."""
    return _users_page(UserForm())


def _roles(branches: list[Branch]) -> dict[str, Any] | None:
    """The roles chosen in the form (``role-<site>``), or ``None`` if one is not a role."""
    roles: dict[str, Any] = {}
    for branch in branches:
        role = request.form.get(f"role-{branch.site}", "")
        if role not in ROLE_CHOICES:
            return None
        if role:
            roles[branch.site] = role
    return roles


@bp.post("/users")
@admin_required
def user_add() -> Page:
    """Add a user, or give one a new password and roles."""
    from city.store import CityError  # noqa: PLC0415 (the store's refusal)

    form = UserForm()
    roles = _roles(directory().branches())
    if not form.validate_on_submit() or roles is None:
        return _users_page(form, 400)
    assert form.username.data is not None
    assert form.password.data is not None
    try:
        saved = city().store.add_user(
            form.username.data, form.password.data, city_admin=form.city_admin.data, roles=roles
        )
    except CityError as exc:
        flash(str(exc), "error")
        return _users_page(form, 409)
    if saved.username == signed_in().username:
        # A new password ends the user's sessions; the one that set it goes on.
        login_user(LoginUser(saved))
    log.info("user %s saved by %s", form.username.data, signed_in().username)
    flash(gettext("Saved user %(name)s.", name=form.username.data), "notice")
    return redirect(url_for("admin.users"))


@bp.post("/users/<username>/remove")
@admin_required
def user_remove(username: str) -> BaseResponse:
    """Remove a user (not oneself)."""
    _checked_form()
    if username == signed_in().username:
        abort(409, description="you cannot remove yourself")
    if not city().store.remove_user(username):
        abort(404)
    log.info("user %s removed by %s", username, signed_in().username)
    flash(gettext("Removed user %(name)s.", name=username), "notice")
    return redirect(url_for("admin.users"))
