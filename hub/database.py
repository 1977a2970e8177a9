"""The hub's database, opened as the settings say and brought up to date.

It sits just above the store, so that the wiring (:mod:`hub.app`) and the command
line's account and pairing commands (:mod:`hub.accounts`, :mod:`hub.provisioning`)
open the database the same way without importing one another.
"""

from __future__ import annotations

from common.settings import Settings
from hub.store import Store

__all__ = ["open_store"]


def open_store(settings: Settings) -> Store:
    """Open the hub's database and bring its schema up to date."""
    store = Store(settings.database_url)
    store.upgrade()
    return store
