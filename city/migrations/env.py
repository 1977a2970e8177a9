"""Alembic environment of the city's database, driven from code by :meth:`CityStore.upgrade`.

There is no ``alembic.ini``: :func:`city.store.alembic_config` builds the configuration.
The city's migrations keep their revision in a table of their own,
:data:`city.store.VERSION_TABLE`, so a city database never mistakes a hub's revision
for its own. When the caller passes an open connection in
``config.attributes["connection"]`` (as the store does, inside its own transaction), the
migrations run on it; otherwise an engine is created from ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from city.store import VERSION_TABLE
from city.tables import metadata
from hub.store import run_migrations_online

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online(config, _run)
