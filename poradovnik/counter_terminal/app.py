"""``poradovnik counter``: runs a counter panel: its buttons, lights and optional panel display."""

from __future__ import annotations

from poradovnik.common.errors import PoradovnikError
from poradovnik.common.settings import Settings

__all__ = ["run"]


def run(settings: Settings) -> None:
    """Run the role until it is stopped."""
    raise PoradovnikError(f"the {settings.role} role is not built yet in this version")
