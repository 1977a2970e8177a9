"""The city's web side: its portal, its admin pages and its API, as one Flask app.

:func:`create_city_app` builds it around the city's running parts (its database and the
live state of every branch: :class:`~city.services.CityServices`), as the hub's web
side is built (:mod:`hub.web`): one blueprint per audience (``portal`` at ``/`` for
citizens, ``admin`` at ``/admin`` for the city's users, ``api`` at ``/api/v1``), the
extensions bound with ``init_app``, templates and message catalogs in this package.
It takes the hub's pieces where they fit: the language rule, bounded JSON bodies, the
security headers, the style sheet and the hub's catalogs for the texts both share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from city.services import CityServices
from city.web.context import EXTENSION, city
from city.web.extensions import babel, csrf, limiter, login_manager
from common.settings import Settings
from hub.web import PACKAGE_DIR as HUB_WEB_DIR
from hub.web import configure, error_json, instance_path, security_headers

__all__ = ["city", "create_city_app"]

PACKAGE_DIR: Final = Path(__file__).resolve().parent

PRIVATE_BLUEPRINTS: Final = frozenset({"admin"})
"""Pages for signed-in users only: no cache may keep them."""

PRIVATE_ENDPOINTS: Final = frozenset(
    {"api.statistics", "api.stats", "api.statistics_csv", "api.stats_csv"}
)
"""API answers for a city user only (the statistics of their branches)."""


def create_city_app(
    settings: Settings, services: CityServices, *, config: dict[str, Any] | None = None
) -> Flask:
    """Build the city's web app on its ``services`` (database and live state).

    ``config`` overrides Flask settings (tests set ``TESTING`` and friends, and
    ``CITY_PAGE_MIN_AGE_S``: how long a portal rendering serves every request while the
    live state changes, :data:`city.web.portal.MIN_AGE_S` by default).
    """
    from city.web import admin, api, i18n, portal  # noqa: PLC0415 (after extensions)
    from city.web.views import Directory  # noqa: PLC0415

    app = Flask(
        __name__,
        static_folder=str(HUB_WEB_DIR / "static"),
        static_url_path="/static/hub",
        template_folder="templates",
        instance_path=instance_path(PACKAGE_DIR),
    )
    configure(
        app,
        settings,
        config,
        cookie="poradovnik_city_session",
        locale=settings.city.languages[0],
        # The city's own texts first, then the hub's for those both pages share.
        translations=f"{PACKAGE_DIR / 'translations'};{HUB_WEB_DIR / 'translations'}",
    )

    app.extensions[EXTENSION] = services
    app.extensions["poradovnik_city_directory"] = directory = Directory(services.store.branches)
    app.extensions["poradovnik_city_portal"] = portal.PageCache(
        lambda: (services.live.version, directory.version),
        min_age_s=app.config.get("CITY_PAGE_MIN_AGE_S", portal.MIN_AGE_S),
    )

    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    limiter.init_app(app)

    app.register_blueprint(portal.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    api.register(app)

    app.after_request(_security_headers)
    app.after_request(i18n.remember_choice)
    app.register_error_handler(HTTPException, _http_error)
    app.context_processor(_template_globals)
    app.add_url_rule("/healthz", "healthz", _healthz)
    return app


def _security_headers(response: Response) -> Response:
    headers = security_headers(response).headers
    if request.blueprint in PRIVATE_BLUEPRINTS or request.endpoint in PRIVATE_ENDPOINTS:
        headers["Cache-Control"] = "no-store"
    elif "Set-Cookie" in headers:  # a ?lang= choice remembered: this answer is the browser's
        headers["Cache-Control"] = "private, no-cache"
    return response


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if request.path.startswith("/api/"):
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_json(status, code, exc.description or exc.name)
    return render_template("error.html", status=status, error=exc), status


def _template_globals() -> dict[str, Any]:
    from city.web.i18n import languages, select_locale  # noqa: PLC0415

    return {
        "city_name": city().settings.city.name,
        "languages": languages(),
        "lang": select_locale(),
    }


def _healthz() -> Response:
    """A trivial answer from the full stack, for load balancers."""
    return Response(b"ok\n", mimetype="text/plain")
