"""The city's REST API at ``/api/v1``, described by its OpenAPI document.

The document is at ``/api/v1/openapi.json`` (spectree, as the hub's: :mod:`hub.web.api`).

- ``GET /branches``: every branch with its address, portal, whether its hub is online
  and per service the people waiting and the expected wait (public, as the portal).
- ``GET /statistics?from=&to=&branch=``: a branch's figures (the hub's
  ``/api/v1/statistics``, same names) across the branches, per branch, service and
  hour; ``GET /statistics.csv`` the tickets themselves. ``/stats`` and ``/stats.csv``
  are the same.

The statistics need a city user: the signed-in session of the admin pages, or HTTP
Basic with the user's name and password (a reporting tool's usual way); the user sees
the branches of their roles. Every refusal is a 4xx with the hub API's JSON body
``{"error": {"code": …, "message": …}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from flask import Blueprint, Flask, Response, g, request
from flask_login import current_user
from pydantic import AwareDatetime, ConfigDict, RootModel
from spectree import SecurityScheme
from spectree.models import InType, SecureType, SecuritySchemeData
from werkzeug.exceptions import HTTPException

from city.web import admin
from city.web.access import Refused, allowed_sites, basic_user, chosen_branch
from city.web.context import city
from city.web.extensions import csrf, limiter
from city.web.i18n import select_locale
from city.web.portal import directory
from city.web.views import branch_views
from hub.web.api import (
    Error,
    GroupOut,
    Model,
    RemoteOut,
    StatisticsQuery,
    ValidationFailure,
    api_spec,
    error,
    group_out,
    remote_out,
    responses,
    serve_document,
)
from sync_agent.protocol import Id, Lang

if TYPE_CHECKING:
    from city.store import CityUser

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

F = TypeVar("F", bound=Callable[..., Any])

STATISTICS_LIMIT: Final = "30/minute"
"""Statistics requests per address (each reads a range of every branch's history)."""


class ServiceNow(Model):
    """A service of a branch, now."""

    code: str
    prefix: str
    name: str
    """In the language asked for with ``lang``."""
    open: bool
    opens_at: AwareDatetime | None
    """When it is not open: the next time it opens (``null``: not known)."""
    waiting: int
    estimated_wait_s: int | None
    """For a ticket taken now; ``null`` when no counter serves the service."""


class BranchOut(Model):
    """A branch and its live queues."""

    site: str
    name: str
    address: str
    url: str | None
    """The branch's portal (its my-ticket, booking and e-service pages)."""
    online: bool
    """Whether its hub is online; if not, the figures are the last known."""
    waiting: int
    services: list[ServiceNow]


class Branches(RootModel[list[BranchOut]]):
    """Every branch, by name."""


class BranchesQuery(Model):
    """The language of the services' names."""

    lang: Lang = "sk"


class CityStatisticsQuery(StatisticsQuery):
    """A range of business days and optionally one branch.

    The 7 days to today by default; at most a year.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    branch: Id | None = None
    """A branch's site; all the branches the user sees by default."""


class CityStatisticsOut(Model):
    """The figures of a range of business days, of one branch or of several."""

    start: date
    end: date
    branch: str | None
    target_wait_s: int
    total: GroupOut
    per_branch: list[GroupOut]
    """Keyed by site."""
    per_service: list[GroupOut]
    per_counter: list[GroupOut]
    """With ``branch`` only (counters' ids are a branch's own)."""
    per_hour: list[GroupOut]
    per_priority: list[GroupOut]
    priority_tickets: int
    remote: RemoteOut


spec = api_spec(
    "Poradovník city API",
    [
        SecurityScheme(name="basic", data=SecuritySchemeData(type=SecureType.HTTP, scheme="basic")),
        SecurityScheme(
            name="session",
            data=SecuritySchemeData(
                type=SecureType.API_KEY, name="poradovnik_city_session", field_in=InType.COOKIE
            ),
        ),
    ],
)


def city_user_required(view: F) -> F:
    """Let in a signed-in city user, or one with right HTTP Basic credentials (else 401)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user: CityUser | None = current_user.user if current_user.is_authenticated else None
        user = user or basic_user()
        if user is None:
            response = error(401, "unauthorized", "sign in, or send a city user's credentials")
            response.headers["WWW-Authenticate"] = 'Basic realm="poradovnik-city"'
            return response
        g.city_user = user
        return view(*args, **kwargs)

    return cast(F, wrapped)


def _branch(user: CityUser) -> str | None:
    """The ``branch`` asked for (:func:`~city.web.access.chosen_branch`)."""
    known = (branch.site for branch in directory().branches())
    return chosen_branch(user, request.args.get("branch") or None, known)


def _invalid(exc: HTTPException) -> Response:
    """A range the figures refuse (a 4xx from :mod:`city.web.admin`) in the API's shape."""
    return error(exc.code or 400, "invalid", exc.description or "bad request")


@bp.errorhandler(Refused)
def _refused(refused: Refused) -> Response:
    return error(refused.status, refused.code, refused.message)


@bp.get("/branches")
@spec.validate(query=BranchesQuery, resp=responses(HTTP_200=Branches, HTTP_422=ValidationFailure))
def branches() -> Branches:
    """Every branch, whether its hub is online, and per service the live queue."""
    views = branch_views(directory().branches(), city().live, select_locale())
    return Branches(
        [
            BranchOut(
                site=v.site,
                name=v.name,
                address=v.address,
                url=v.url,
                online=v.online,
                waiting=v.waiting,
                services=[
                    ServiceNow(
                        code=s.code,
                        prefix=s.prefix,
                        name=s.name,
                        open=s.open,
                        opens_at=s.opens_at,
                        waiting=s.waiting,
                        estimated_wait_s=s.estimated_wait_s,
                    )
                    for s in v.services
                ],
            )
            for v in views
        ]
    )


_STATS_RESPONSES: Final = {
    "HTTP_401": Error,
    "HTTP_403": Error,
    "HTTP_422": ValidationFailure,
    "HTTP_429": Error,
}


@bp.get("/statistics")
@bp.get("/stats", endpoint="stats")
@limiter.limit(STATISTICS_LIMIT)
@city_user_required
@spec.validate(
    query=CityStatisticsQuery,
    resp=responses(HTTP_200=CityStatisticsOut, **_STATS_RESPONSES),
    security=[{"basic": []}, {"session": []}],
)
def statistics() -> Any:
    """Waiting and service times per branch, service and hour (a city user's branches).

    The figures are a branch's (the hub's ``/api/v1/statistics``); ``branch`` narrows
    them to one branch and then adds its counters. 400 for a range over a year.
    """
    user: CityUser = g.city_user
    branch = _branch(user)
    try:
        found, _zone = admin.city_figures(allowed_sites(user), branch)
    except HTTPException as exc:
        return _invalid(exc)
    figures = found.figures
    return CityStatisticsOut(
        start=figures.start,
        end=figures.end,
        branch=branch,
        target_wait_s=figures.target_wait_s,
        total=group_out(figures.total),
        per_branch=[group_out(g) for g in found.per_branch],
        per_service=[group_out(g) for g in figures.per_service],
        per_counter=[group_out(g) for g in found.per_counter],
        per_hour=[group_out(g) for g in figures.per_hour],
        per_priority=[group_out(g) for g in figures.per_priority],
        priority_tickets=figures.priority_tickets,
        remote=remote_out(figures.remote),
    )


@bp.get("/statistics.csv")
@bp.get("/stats.csv", endpoint="stats_csv")
@limiter.limit(STATISTICS_LIMIT)
@city_user_required
@spec.validate(
    query=CityStatisticsQuery,
    resp=responses(**_STATS_RESPONSES),
    security=[{"basic": []}, {"session": []}],
)
def statistics_csv() -> Any:
    """Every ticket of the range as CSV (``text/csv``): the branch, then the hub's columns."""
    user: CityUser = g.city_user
    try:
        return admin.tickets_csv(allowed_sites(user), _branch(user))
    except HTTPException as exc:
        return _invalid(exc)


serve_document(bp, spec)


def register(app: Flask) -> None:
    """Let the OpenAPI document describe ``app``'s API routes."""
    spec.register(app)
