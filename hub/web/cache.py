"""Pages kept until the queue changes: one rendering serves every reader.

The queue-status page and the my-ticket pages change only when the queue does
(and, for opening hours, with time). Two caches keep them, each entry stamped
with the :class:`~hub.web.live.LiveFeed` version and the branding
version it was made at, and dropped when either moved or ``ttl_s`` passed:

* :class:`PageCache`, in the Flask views: one rendering per page and language;
* :class:`ResponseCache`, in front of the WSGI thread pool (see
  :mod:`hub.web.server`): the whole answer to a request, replayed on
  the event loop without a thread or Flask, for the responses that a view
  marks with :data:`CACHEABLE` (they depend only on the path, the page's language
  and HTTPS, and set no cookie). It is keyed by the negotiated language, not by the
  raw headers, so clients cannot grow it with variants of them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

from hub.siteconfig import SiteConfig
from hub.web.live import LiveFeed

V = TypeVar("V")

TTL_S: Final = 10.0
"""Render again after this long even without a change (opening hours, clock)."""

CACHEABLE: Final = "X-Poradovnik-Cacheable"
"""A view sets this header (removed before sending) on answers the server may replay."""

Stamp = tuple[int, int]
"""The (queue version, branding version) an entry was made at."""


class VersionedCache(Generic[V]):
    """Values by key, each valid for one version of the queue and branding and ``ttl_s``."""

    def __init__(
        self, feed: LiveFeed, config: SiteConfig, *, max_entries: int = 4096, ttl_s: float = TTL_S
    ) -> None:
        self.feed = feed
        self.config = config
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: OrderedDict[Hashable, tuple[Stamp, float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many entries are kept (current or not)."""
        return len(self._entries)

    def stamp(self) -> Stamp:
        """The versions now: take it before computing a value to :meth:`put`."""
        return (self.feed.version, self.config.version)

    def find(self, key: Hashable) -> V | None:
        """The value of ``key`` if it is still current."""
        entry = self._entries.get(key)
        if entry is None or entry[0] != self.stamp() or time.monotonic() - entry[1] >= self.ttl_s:
            return None
        return entry[2]

    def put(self, key: Hashable, stamp: Stamp, value: V) -> None:
        """Keep ``value`` (computed at ``stamp``), dropping the least recent beyond the limit."""
        with self._lock:
            self._entries[key] = (stamp, time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class PageCache(VersionedCache[bytes]):
    """Renderings by key (page, language…)."""

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The page for ``key``: cached if still current, else ``render()`` now."""
        found = self.find(key)
        if found is not None:
            return found
        stamp = self.stamp()
        body = render()
        self.put(key, stamp, body)
        return body
