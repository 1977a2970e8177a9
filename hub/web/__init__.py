"""The hub's web side: admin pages, the citizen portal and the REST API, as one Flask app.

:func:`create_app` builds the app around the hub's running parts (a :class:`Hub`,
which the hub's wiring, :func:`hub.app.web_parts`, builds and subscribes to the
queue), as Flask's application-factory pattern does: one blueprint per audience (``portal`` for
citizens at ``/``, ``lobby`` for the waiting room's TV at ``/display``, ``admin``
at ``/admin``, ``clerk`` (the clerks' counter panel) at ``/clerk``, ``api`` at
``/api/v1``), the
extensions bound with ``init_app``, Jinja templates and message catalogs in this
package. :mod:`hub.web.server` serves it; the live pages' event
streams live in :mod:`hub.web.live`.

To add a page set, write a module
with a :class:`flask.Blueprint` and add it to :func:`blueprints`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix

from common.errors import PoradovnikError
from common.settings import Settings
from hub.web import i18n
from hub.web.cache import CACHEABLE
from hub.web.context import EXTENSION, Hub, hub
from hub.web.extensions import babel, csrf, limiter, login_manager
from hub.web.jsonbody import BoundedJSONProvider
from hub.web.live import SECURITY_HEADERS
from hub.web.refusals import refusal_text

__all__ = ["Hub", "blueprints", "create_app", "hub"]

PACKAGE_DIR = Path(__file__).resolve().parent


def blueprints() -> list[Blueprint]:
    """Every page set of the web side, in registration order."""
    from hub.web import (  # noqa: PLC0415 (after extensions)
        admin,
        api,
        booking,
        clerk,
        lobby,
        portal,
        remote,
    )

    return [portal.bp, booking.bp, remote.bp, lobby.bp, admin.bp, clerk.bp, api.bp]


def create_app(
    parts: Hub,
    *,
    config: dict[str, Any] | None = None,
    extra: Iterable[Blueprint] = (),
) -> Flask:
    """Build the web app on the hub's ``parts`` (see :func:`hub.app.web_parts`).

    ``config`` overrides Flask settings (tests set ``TESTING`` and friends);
    ``extra`` blueprints are registered after the web side's own.
    """
    settings = parts.settings
    app = Flask(
        __name__,
        static_folder="static",
        template_folder="templates",
        instance_path=instance_path(PACKAGE_DIR),
    )
    configure(
        app,
        settings,
        config,
        cookie="poradovnik_session",
        locale=settings.site.default_language,
        translations=str(PACKAGE_DIR / "translations"),
        JSON_SORT_KEYS=False,
        TRUSTED_HOSTS=_trusted_hosts(settings),
    )
    app.extensions[EXTENSION] = parts

    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale)
    limiter.init_app(app)

    for blueprint in [*blueprints(), *extra]:
        app.register_blueprint(blueprint)
    from hub.web import api  # noqa: PLC0415 (after the blueprints)

    api.register(app)

    app.after_request(security_headers)
    app.after_request(_private_pages_not_stored)
    app.after_request(i18n.remember_choice)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(PoradovnikError, _refused)
    app.context_processor(_template_globals)
    app.add_url_rule("/healthz", "healthz", _healthz)
    if parts.metrics is not None:
        parts.metrics.init_app(app)
    if parts.mailer is not None and parts.mailer.enabled:
        from hub.web.booking_mail import BookingMail  # noqa: PLC0415 (after the blueprints)

        parts.appointments.subscribe(BookingMail(app, parts.mailer).changed)
    return app


def instance_path(package_dir: Path) -> str:
    """The web app's instance folder, given to Flask so it never searches the import path.

    Left to itself Flask looks for the app's package on ``sys.path``; a hub started in a
    directory that holds a folder named like the package (a data directory ``hub``)
    sees the package there as a namespace package, and that search fails. The folder is
    never created: the apps keep nothing in it.
    """
    return str(package_dir / "instance")


def configure(
    app: Flask,
    settings: Settings,
    config: dict[str, Any] | None,
    *,
    cookie: str,
    locale: str,
    translations: str,
    **extra: Any,
) -> None:
    """Set what the hub's and the city's web apps share: bounded JSON, sessions, Babel.

    ``cookie`` names the session cookie, ``locale`` and ``translations`` are Babel's
    default and catalogs (``;``-separated), ``extra`` adds Flask settings and ``config``
    overrides them all (tests). ``[web] proxy_hops`` puts the app behind a proxy.
    """
    app.json = BoundedJSONProvider(app)
    web = settings.web
    app.config.update(
        SECRET_KEY=secret_key(settings),
        SESSION_COOKIE_NAME=cookie,
        SESSION_COOKIE_SECURE=web.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=12 * 3600,
        BABEL_DEFAULT_LOCALE=locale,
        BABEL_DEFAULT_TIMEZONE=settings.site.timezone,
        BABEL_TRANSLATION_DIRECTORIES=translations,
        MAX_CONTENT_LENGTH=64 * 1024,
        SEND_FILE_MAX_AGE_DEFAULT=timedelta(hours=1),
        RATELIMIT_ENABLED=True,
        **extra,
    )
    app.config.update(config or {})
    if web.proxy_hops:
        hops = web.proxy_hops
        # X-Forwarded-Host is never trusted: the host comes from the request (and must
        # be one of [web] allowed_hosts when they are set).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)  # type: ignore[method-assign]


def secret_key(settings: Settings) -> bytes:
    """The session-signing key, from its file (created, owner-only, at first start)."""
    path = settings.web.secret_key_file or settings.data.dir / "web-secret.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PoradovnikError(f"cannot read the web secret key {path}: {exc.strerror}") from None
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(key)
    except FileExistsError:
        return path.read_bytes()  # another process created it first
    except OSError as exc:
        raise PoradovnikError(f"cannot create the web secret key {path}: {exc.strerror}") from None
    return key


LOCAL_HOSTS: Final = ("localhost", "127.0.0.1", "::1", "[::1]")
"""Host names always answered (health checks on the hub itself)."""


def _trusted_hosts(settings: Settings) -> list[str] | None:
    """Flask's TRUSTED_HOSTS: ``[web] allowed_hosts``, public_url's host and loopback.

    ``None`` (any host) when ``allowed_hosts`` is empty.
    """
    if not settings.web.allowed_hosts:
        return None
    hosts = [*settings.web.allowed_hosts, *LOCAL_HOSTS]
    public = settings.web.public_url
    if public is not None and (name := urlsplit(public).hostname):
        hosts.append(name)
    return hosts


PRIVATE_BLUEPRINTS: Final = frozenset({"admin", "clerk"})
"""Page sets for signed-in users only: no cache (browser's or proxy's) may keep them."""

PRIVATE_ENDPOINTS: Final = frozenset(
    {"portal.eservice", "api.eservice_lookup", "api.book_appointment", "api.cancel_appointment"}
)
"""Pages of the public side that show someone's own data (an application's status)."""


def _private_pages_not_stored(response: Response) -> Response:
    if request.blueprint in PRIVATE_BLUEPRINTS or request.endpoint in PRIVATE_ENDPOINTS:
        response.headers["Cache-Control"] = "no-store"
    return response


def security_headers(response: Response) -> Response:
    """Add the headers every answer carries (HSTS over HTTPS); the city's pages too."""
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        headers.setdefault(name, value)
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def wants_json() -> bool:
    """Whether the current request is the API's (errors answer in JSON there)."""
    return request.path.startswith("/api/")


def error_json(status: int, code: str, message: str) -> tuple[Response, int]:
    """The API's error body: ``{"error": {"code": …, "message": …}}``."""
    return jsonify(error={"code": code, "message": message}), status


def _http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    if isinstance(exc, SecurityError):
        # A host outside [web] allowed_hosts: no page links can be built for it.
        return Response("400 Bad Request: unknown host name\n", 400, mimetype="text/plain")
    if wants_json():
        response, status = error_json(status, code, exc.description or exc.name)
        if status == 405 and exc.response is None:
            valid = getattr(exc, "valid_methods", None)
            if valid:
                response.headers["Allow"] = ", ".join(valid)
        return response, status
    return render_template("error.html", status=status, error=exc), status


def _refused(exc: PoradovnikError) -> Any:
    if wants_json():
        return error_json(409, getattr(exc, "code", "refused"), str(exc))
    return render_template("error.html", status=409, error=refusal_text(exc)), 409


def _template_globals() -> dict[str, Any]:
    current = hub()
    return {
        "branding": current.config.branding(),
        "languages": current.config.branding().languages,
        "lang": i18n.select_locale(),
    }


def _healthz() -> Response:
    """A trivial response from the full stack: for load balancers and the benchmark's floor."""
    return Response(b"ok\n", mimetype="text/plain", headers={CACHEABLE: "1"})
