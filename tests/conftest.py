"""Shared pytest fixtures."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from poradovnik.hub.store import Store, sqlite_url

# =============================================================================
# Store fixtures (poradovnik.hub.store): a database URL per backend, and stores
# =============================================================================

POSTGRES_URL_ENV = "PORADOVNIK_TEST_POSTGRES_URL"
POSTGRES_URL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    """The PostgreSQL server the tests use (each test gets its own schema in it)."""
    return os.environ.get(POSTGRES_URL_ENV, POSTGRES_URL_DEFAULT)


@functools.cache
def _postgres_unreachable(url: str) -> str | None:
    """Why the server at ``url`` cannot be used, or ``None`` when it answers (cached)."""
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means: skip, and say why
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    finally:
        engine.dispose()
    return None


def _postgres_schema_url() -> Iterator[str]:
    base = postgres_base_url()
    shown = make_url(base).render_as_string(hide_password=True)
    reason = _postgres_unreachable(base)
    if reason is not None:
        pytest.skip(f"PostgreSQL not reachable at {shown}: {reason}")
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
    PostgreSQL schema (dropped afterwards; skipped with the reason when no server)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "hub" / "hub.db")
    else:
        yield from _postgres_schema_url()


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
