"""The city portal at ``/``: every branch, and per service the people waiting and the wait.

``?service=<code>`` puts the branch with the shortest wait for that service first.

Each branch links to its own portal's pages (:func:`~city.web.views.branch_links`). The
page carries nothing personal: it is rendered at most once a second per language and
service whatever the load (:class:`PageCache`), and may be kept by a proxy for a few
seconds. ``static/city.js`` swaps in the fresh list every :data:`REFRESH_S` seconds
(a ``<noscript>`` refresh does it without JavaScript).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

from flask import Blueprint, Response, abort, current_app, render_template, request

from city.web.context import city
from city.web.i18n import select_locale
from city.web.views import Directory, branch_links, branch_views, by_wait, service_names

bp = Blueprint("portal", __name__, static_folder="static", static_url_path="/city-static")

REFRESH_S: Final = 15
"""How often an open portal page fetches the fresh list."""

MIN_AGE_S: Final = 1.0
"""While live state changes, a rendering serves every request for this long."""

MAX_AGE_S: Final = 5
"""How long a browser or proxy may keep the page (``Cache-Control: max-age``)."""

SERVICE_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
"""A service code as the branches' catalogues write them (``sync_agent.protocol.Id``)."""

_HTML: Final = "text/html; charset=utf-8"


class PageCache:
    """Renderings by key, made again when the live state moved and one is a second old.

    A rendering is current while the city's live state and branches' list are as they
    were, for at most ``ttl_s``; while live state changes, a rendering serves every
    request for ``min_age_s``, so a city of busy branches costs at most one rendering
    a second per key. At most ``max_entries`` are kept.
    """

    def __init__(
        self,
        version: Callable[[], Hashable],
        *,
        min_age_s: float = MIN_AGE_S,
        ttl_s: float = 10.0,
        max_entries: int = 512,
    ) -> None:
        self.version = version
        self.min_age_s = min_age_s
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, tuple[Hashable, float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The page for ``key``: kept if still current, else ``render()`` now."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            stamp, made, body = entry
            age = now - made
            if age < self.min_age_s or (age < self.ttl_s and stamp == self.version()):
                return body
        stamp = self.version()
        body = render()
        with self._lock:
            self._entries[key] = (stamp, now, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return body


def directory() -> Directory:
    """The app's branch list (see :func:`city.web.create_city_app`)."""
    found: Directory = current_app.extensions["poradovnik_city_directory"]
    return found


def _cache() -> PageCache:
    found: PageCache = current_app.extensions["poradovnik_city_portal"]
    return found


def _chosen_service() -> str | None:
    """The ``?service=`` asked for: ``None`` if none; 400 if it cannot be a code."""
    code = request.args.get("service") or None
    if code is not None and not SERVICE_RE.fullmatch(code):
        abort(400, description="service: a service code such as 'taxes'")
    return code


def _page(template: str) -> Response:
    code = _chosen_service()
    lang = select_locale()
    parts = city()

    def render() -> bytes:
        views = branch_views(directory().branches(), parts.live, lang)
        names = service_names(views)
        if code is not None and code not in names:
            abort(404, description=f"no branch has the service {code!r}")
        return render_template(
            template,
            branches=by_wait(views, code) if code else views,
            names=names,
            chosen=code,
            links=branch_links,
            refresh_s=REFRESH_S,
        ).encode()

    body = _cache().get((template, lang, code), render)
    response = Response(body, content_type=_HTML)
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_S}"
    response.headers["Vary"] = "Accept-Language, Cookie"
    return response


@bp.get("/")
def branches() -> Response:
    """Every branch, its address, and per service the people waiting and the wait."""
    return _page("portal/branches.html")


@bp.get("/fragment")
def fragment() -> Response:
    """The list alone, for ``city.js``'s refresh."""
    return _page("portal/_branches.html")
