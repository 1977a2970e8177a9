"""What the city's web pages work with: one object holding the city's parts.

:class:`CityServices` is built by :mod:`city.app` (and by tests) and handed to the web
app factory, ``city.web.create_city_app(settings, services)``. The web side reads and
changes the city only through it:

- :attr:`CityServices.store`, the :class:`~city.store.CityStore` (branches, users and
  their roles, the catalogue, events for statistics, lag figures);
- :attr:`CityServices.live`, the :class:`~city.live.LiveCity` (every branch's queues,
  counters, devices and calls as their brokers bring them);
- :attr:`CityServices.settings`, the process's settings (``[city]`` above all);
- :meth:`CityServices.set_catalogue`, which stores a new catalogue and publishes it
  to every branch that takes it;
- :meth:`CityServices.branches_changed`, to call after a branch is added or removed
  or its catalogue choice changed: the city's broker files are rewritten and the broker
  reloaded, and every ack and the catalogue are published again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from city.live import LiveCity
from city.store import CityStore
from common.settings import Settings
from sync_agent.city_protocol import Catalogue, CatalogueService

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What publishes to the branches: the city's consumer (:class:`city.consumer.CityConsumer`)."""

    def publish_catalogue(self) -> None:
        """Publish the stored catalogue to every branch (cleared for those not taking it)."""

    def resync(self) -> None:
        """Publish every branch's ack again (a new branch learns it may start)."""


@dataclass
class CityServices:
    """The city's parts, for its web pages (see the module's docstring)."""

    settings: Settings
    store: CityStore
    live: LiveCity = field(default_factory=LiveCity)
    publisher: Publisher | None = None
    """The consumer, when the process runs one (a web test may run none: nothing is
    published then, the database alone changes)."""
    on_branches_changed: Callable[[], None] | None = None
    """Rewrites the city's broker files and reloads the broker (:mod:`city.app` sets it)."""

    def set_catalogue(self, services: Iterable[CatalogueService]) -> Catalogue:
        """Store a new catalogue (its version raised) and publish it; the catalogue.

        Raises :class:`~city.store.CityError` for a catalogue that cannot be stored.
        """
        catalogue = self.store.set_catalogue(services)
        if self.publisher is not None:
            self.publisher.publish_catalogue()
        return catalogue

    def branches_changed(self) -> None:
        """After a branch was added, removed or changed: broker files, acks and catalogue."""
        if self.on_branches_changed is not None:
            self.on_branches_changed()
        if self.publisher is not None:
            self.publisher.resync()
