"""Rendered pages kept until the queue changes: one rendering serves every reader.

The queue-status page and the my-ticket pages change only when the queue does
(and, for opening hours, with time): :class:`PageCache` keeps each rendering
with the :class:`~poradovnik.hub.web.live.LiveFeed` version and branding version
it was made at, and renders again when either moved or ``ttl_s`` passed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

from poradovnik.hub.web.live import LiveFeed
from poradovnik.hub.web.siteconfig import SiteConfig

TTL_S: Final = 10.0
"""Render again after this long even without a change (opening hours, clock)."""


class PageCache:
    """Renderings by key (page, language…), valid for one version of the queue."""

    def __init__(
        self, feed: LiveFeed, config: SiteConfig, *, max_entries: int = 4096, ttl_s: float = TTL_S
    ) -> None:
        self.feed = feed
        self.config = config
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: OrderedDict[Hashable, tuple[tuple[int, int], float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """The page for ``key``: cached if still current, else ``render()`` now."""
        version = (self.feed.version, self.config.version)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] == version and now - entry[1] < self.ttl_s:
            return entry[2]
        body = render()
        with self._lock:
            self._entries[key] = (version, now, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return body
