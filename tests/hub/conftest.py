"""Fixtures of the hub's tests: stores on SQLite and PostgreSQL, and the web side."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from web_helpers import ADMIN_PASSWORD, csrf_token

from common.settings import DataSettings, Settings, WebSettings
from hub.app import open_queue, seed_demo, serve_web, web_app
from hub.service import QueueService
from hub.store import Store, sqlite_url
from hub.users import Users
from hub.web.server import WebServer
from poradovnik.cli import main

# =============================================================================
# Store fixtures (hub.store): a database URL per backend, and stores
# =============================================================================


def _postgres_schema_url(base: str) -> Iterator[str]:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file (in a directory not yet created), or a fresh
    PostgreSQL schema (dropped afterwards; see ``postgres_server``)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "hub" / "hub.db")
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL schema's URL (dropped afterwards; see ``postgres_server``)."""
    yield from _postgres_schema_url(postgres_server)


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Open (and upgrade) more stores on ``store_url``; all are closed afterwards."""
    opened: list[Store] = []

    def open_() -> Store:
        store = Store(store_url)
        opened.append(store)
        store.upgrade()
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    """An upgraded, empty store on each backend."""
    return open_store()


# =============================================================================
# Web fixtures (hub.web): the Flask app on a real queue and store, its
# test client, the command line on the same database, and the real server
# =============================================================================


def web_settings_for(data_dir: Path, **web: Any) -> Settings:
    """Settings of a hub whose web side runs on 127.0.0.1 in plain HTTP."""
    return Settings(
        role="hub",
        data=DataSettings(dir=data_dir),
        web=WebSettings(host="127.0.0.1", secure_cookies=False, **web),
    )


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    """The web tests' hub settings (SQLite in tmp_path)."""
    return web_settings_for(tmp_path / "hub", lookup_limit="5/minute")


@pytest.fixture
def web_queue(
    web_settings: Settings, new_hub_database: Callable[[Settings], None]
) -> Iterator[QueueService]:
    """The demo office's queue for the web tests."""
    new_hub_database(web_settings)
    queue = open_queue(web_settings)
    seed_demo(queue)
    yield queue
    queue.store.close()


@pytest.fixture
def app(web_settings: Settings, web_queue: QueueService) -> Flask:
    """The web app (CSRF, rate limits and all), as the hub builds it."""
    return web_app(web_settings, web_queue, config={"TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser without JavaScript: Flask's test client."""
    return app.test_client()


@pytest.fixture
def runner(web_settings: Settings, tmp_path: Path) -> Callable[..., Result]:
    """Run ``poradovnik ...`` against the web tests' hub database."""
    config = tmp_path / "hub.toml"
    config.write_text(f'role = "hub"\n[data]\ndir = "{web_settings.data.dir.as_posix()}"\n')
    cli = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return cli.invoke(main, ["--config", str(config), *args], input=input)

    return run


@pytest.fixture
def admin(app: Flask, client: FlaskClient, web_queue: QueueService) -> FlaskClient:
    """The test client signed in as the admin ``admin``."""
    Users(web_queue.store).add("admin", ADMIN_PASSWORD, "admin")
    token = csrf_token(client, "/admin/login")
    answer = client.post(
        "/admin/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


@pytest.fixture
def web_server(web_settings: Settings, web_queue: QueueService) -> Iterator[WebServer]:
    """The real web server (uvicorn, thread pool, event streams) on a free port."""
    server = serve_web(web_settings, web_queue, port=0)
    yield server
    server.stop()
