"""What the city web's views share: the city's running parts, reached from the current app."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from flask import Flask, current_app

from common.settings import Settings

if TYPE_CHECKING:
    from city.live import LiveCity
    from city.store import CityStore

EXTENSION = "poradovnik_city"
"""The key of the city's parts in ``app.extensions``."""


class CityParts(Protocol):
    """The city's parts as the web uses them (``city.services`` builds them)."""

    settings: Settings
    store: CityStore
    """The city's database: branches, users, catalogue, every branch's history."""
    live: LiveCity
    """Every branch's live state, as the branches' brokers bridge it to the city."""


def city(app: Flask | None = None) -> CityParts:
    """The city's parts of ``app`` (default: the current app)."""
    found: CityParts = (app or current_app).extensions[EXTENSION]
    return found
