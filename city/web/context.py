"""What the city web's views share: the city's running parts, reached from the current app."""

from __future__ import annotations

from flask import Flask, current_app

from city.services import CityServices

EXTENSION = "poradovnik_city"
"""The key of the city's :class:`~city.services.CityServices` in ``app.extensions``."""


def city(app: Flask | None = None) -> CityServices:
    """The city's parts of ``app`` (default: the current app)."""
    found: CityServices = (app or current_app).extensions[EXTENSION]
    return found
