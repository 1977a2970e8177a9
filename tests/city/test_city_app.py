"""The city process's parts: its web pages served beside the consumer, from a factory."""

from __future__ import annotations

import urllib.request

import pytest
from city_helpers import CityBroker
from flask import Flask

from city.app import start_web
from city.live import LiveCity
from city.services import CityServices
from common.settings import Settings

pytestmark = pytest.mark.postgres


def pages(settings: Settings, services: CityServices) -> Flask:
    """A stand-in for ``city.web.create_city_app``: one page on the services it is given."""
    app = Flask("city-test")

    @app.get("/")
    def index() -> str:
        names = ", ".join(b.name for b in services.store.branches())
        return f"{settings.city.name}: {names}"

    return app


def test_the_web_pages_are_served_on_the_services(city_broker: CityBroker) -> None:
    settings, store = city_broker.settings, city_broker.store
    store.add_branch("a", name="Centrum", address="x")
    services = CityServices(settings, store, LiveCity())
    server = start_web(settings, pages(settings, services), port=0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10) as answer:
            assert answer.status == 200
            assert answer.read().decode() == "Mesto: Centrum"
    finally:
        server.stop()
