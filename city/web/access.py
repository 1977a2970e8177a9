"""Who may see what: the city's users, their sessions and their branches.

A city admin sees every branch and manages the catalogue and the users; any other user
sees the branches where they have a role (``viewer``: dashboard, devices, statistics;
``manager``: also whether the branch takes the city's catalogue). Pages sign in with a
session (Flask-Login); the statistics API also takes HTTP Basic with a city user's name
and password, for a city's reporting tools.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

from flask import abort, request
from flask_login import UserMixin, current_user, login_required

from city.web.context import city
from city.web.extensions import login_manager
from hub.users import session_id, session_user

if TYPE_CHECKING:
    from city.store import CityUser

F = TypeVar("F", bound=Callable[..., Any])

MAX_CREDENTIAL = 256
"""Longer Basic credentials are refused unread (argon2 would hash them all)."""

SITE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,63}")
"""What a branch's site id can be."""


class Refused(Exception):
    """A request for a branch the user may not have: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class LoginUser(UserMixin):
    """A signed-in city user as Flask-Login sees it."""

    def __init__(self, user: CityUser) -> None:
        self.user = user
        self.id = user.username

    def get_id(self) -> str:
        """What the session cookie holds: the user name and the user's session key.

        A new key in the database (new password, sign-out) ends the sessions that carry
        the old one, wherever their cookies are.
        """
        return session_id(self.user.username, self.user.session_key)


@login_manager.user_loader
def _load_user(session: str) -> LoginUser | None:
    user = session_user(session, city().store.user)
    return LoginUser(user) if user is not None else None


login_manager.login_view = "admin.login"
login_manager.session_protection = "strong"


def allowed_sites(user: CityUser) -> frozenset[str] | None:
    """The sites ``user`` may see; ``None``: every branch (a city admin)."""
    return None if user.city_admin else frozenset(user.roles)


def managed_sites(user: CityUser) -> frozenset[str] | None:
    """The sites whose catalogue choice ``user`` may change; ``None``: every branch."""
    if user.city_admin:
        return None
    return frozenset(site for site, role in user.roles.items() if role == "manager")


def chosen_branch(user: CityUser, site: str | None, known: Iterable[str]) -> str | None:
    """The branch ``site`` asked for (``None``: all), if ``user`` may see it.

    Raises :class:`Refused`: 400 for what cannot be a site, 404 for a branch not among
    ``known``, 403 for one not the user's.
    """
    if site is None:
        return None
    if not SITE_RE.fullmatch(site):
        raise Refused(400, "invalid", "branch: a branch's site id")
    if site not in set(known):
        raise Refused(404, "unknown_branch", f"no branch {site!r}")
    sites = allowed_sites(user)
    if sites is not None and site not in sites:
        raise Refused(403, "forbidden", f"{user.username} may not see branch {site!r}")
    return site


def signed_in() -> CityUser:
    """The signed-in user (in a view behind ``login_required``)."""
    found: CityUser = current_user.user
    return found


def basic_user() -> CityUser | None:
    """The city user of the request's HTTP Basic credentials, if they are right."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    username, password = auth.username or "", auth.password or ""
    if not username or len(username) > MAX_CREDENTIAL or len(password) > MAX_CREDENTIAL:
        return None
    return city().store.authenticate(username, password)


def admin_required(view: F) -> F:
    """Let only city admins in (others get 403)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not signed_in().city_admin:
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapped)
