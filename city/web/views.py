"""The branches as the city's pages and API show them: who they are, and their live queues.

The branches' list comes from the database (:class:`Directory`, re-read at most every
:data:`BRANCHES_TTL_S` and kept when the database is away); their queues from
:class:`~city.live.LiveCity`. A branch whose hub is not online keeps its last known
figures, marked stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Final

from sqlalchemy.exc import SQLAlchemyError

from common.i18n import service_name

if TYPE_CHECKING:
    from city.live import BranchLive, LiveCity
    from city.store import Branch

log = logging.getLogger(__name__)

BRANCHES_TTL_S: Final = 10.0
"""How long the branches' list is used before the database is asked again."""


@dataclass(frozen=True, slots=True)
class ServiceLive:
    """One service of a branch, now."""

    code: str
    prefix: str
    name: str
    """In the page's language."""
    waiting: int
    estimated_wait_s: int | None
    """For a ticket taken now; ``None``: no counter serves it."""
    open: bool
    opens_at: datetime | None
    """When closed: the next time it opens (``None``: not known)."""

    @property
    def wait_min(self) -> int | None:
        """The estimated wait in whole minutes (rounded up)."""
        return None if self.estimated_wait_s is None else -(-self.estimated_wait_s // 60)


@dataclass(frozen=True, slots=True)
class BranchView:
    """A branch: who it is, and its services' live state."""

    site: str
    name: str
    address: str
    url: str | None
    online: bool
    """Whether the branch's hub is online; if not, the figures are its last known (stale)."""
    heard: bool
    """Whether the city has heard of the branch at all since it started."""
    services: tuple[ServiceLive, ...]
    updated_at: datetime | None
    """When the city last heard of the branch."""

    @property
    def waiting(self) -> int:
        """Citizens waiting in every service."""
        return sum(service.waiting for service in self.services)

    def service(self, code: str) -> ServiceLive | None:
        """The branch's service ``code``, if it has it."""
        return next((s for s in self.services if s.code == code), None)


class Directory:
    """The city's branches from the database, re-read at most every ``ttl_s`` seconds.

    When the database cannot be read, the last list is used (and logged): the portal
    keeps working on live state while the database fails over.
    """

    def __init__(self, load: Callable[[], list[Branch]], *, ttl_s: float = BRANCHES_TTL_S) -> None:
        self._load = load
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._branches: list[Branch] = []
        self._read_at: float | None = None
        self.version = 0
        """Grows whenever the list read differs from the one before."""

    def branches(self) -> list[Branch]:
        """Every branch, by site."""
        with self._lock:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < self.ttl_s:
                return self._branches
            try:
                fresh = self._load()
            except SQLAlchemyError as exc:
                log.warning("cannot read the branches (using the last list): %s", exc)
                fresh = self._branches
            if fresh != self._branches:
                self.version += 1
            self._branches, self._read_at = fresh, now
            return fresh

    def forget(self) -> None:
        """Read the database on the next call (after a change the web made)."""
        with self._lock:
            self._read_at = None


def branch_view(branch: Branch, live: BranchLive | None, lang: str) -> BranchView:
    """One branch as the pages show it, its services in their codes' order."""
    queues = live.queues if live is not None else {}
    services = tuple(
        ServiceLive(
            code=code,
            prefix=queue.prefix,
            name=service_name(queue.names, lang, code),
            waiting=queue.waiting,
            estimated_wait_s=queue.estimated_wait_s,
            open=queue.open,
            opens_at=queue.opens_at,
        )
        for code, queue in sorted(queues.items())
    )
    return BranchView(
        site=branch.site,
        name=branch.name,
        address=branch.address,
        url=branch.url,
        online=live is not None and live.hub_online,
        heard=live is not None,
        services=services,
        updated_at=live.updated_at if live is not None else None,
    )


def branch_views(
    branches: Iterable[Branch], live: LiveCity, lang: str, *, sites: frozenset[str] | None = None
) -> list[BranchView]:
    """The ``branches`` (of ``sites`` only, if given) with their live state, by name."""
    state = live.branches()
    views = [
        branch_view(branch, state.get(branch.site), lang)
        for branch in branches
        if sites is None or branch.site in sites
    ]
    return sorted(views, key=lambda view: (view.name.casefold(), view.site))


def service_names(views: Iterable[BranchView]) -> dict[str, str]:
    """Every service some branch has: code → name (the first branch's), by name."""
    names: dict[str, str] = {}
    for view in views:
        for service in view.services:
            names.setdefault(service.code, service.name)
    return dict(sorted(names.items(), key=lambda item: item[1].casefold()))


def by_wait(views: Iterable[BranchView], code: str) -> list[BranchView]:
    """The branches, the shortest wait for service ``code`` first.

    Online branches where the service is open come first, by estimated wait (a branch
    with no estimate after those with one) then by people waiting; then the branches
    where it is closed or whose figures are stale; the branches without it last.
    """

    def key(view: BranchView) -> tuple[int, float, int, str]:
        service = view.service(code)
        if service is None:
            return (3, 0.0, 0, view.name)
        if not (service.open and view.online):
            return (2, 0.0, service.waiting, view.name)
        wait = service.estimated_wait_s
        return (0 if wait is not None else 1, float(wait or 0), service.waiting, view.name)

    return sorted(views, key=key)


def branch_links(url: str | None) -> Mapping[str, str]:
    """A branch portal's pages: its live queue, remote tickets, booking and e-services.

    The my-ticket page of a ticket (``/t/<id>``) is reached from the ticket's QR code
    or from the remote-ticket page that takes it; the city links that page.
    """
    if url is None:
        return {}
    return {
        "queue": f"{url}/",
        "ticket": f"{url}/remote",
        "book": f"{url}/book",
        "eservice": f"{url}/eservice",
    }
