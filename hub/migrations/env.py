"""Alembic environment of the hub's store, driven from code by :meth:`Store.upgrade`.

There is no ``alembic.ini``: :func:`hub.store.alembic_config` builds the
configuration. When the caller passes an open connection in
``config.attributes["connection"]`` (as the store does, inside its own transaction),
the migrations run on it; otherwise an engine is created from ``sqlalchemy.url``.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from hub.store import UTCDateTime, metadata, run_migrations_online

config = context.config


def _render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render the store's UTC timestamps as the plain type they are in the database."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    run_migrations_online(config, _run)


_main()
