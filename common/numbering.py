"""How a ticket's day sequence becomes the number a citizen sees, on the hub and on a kiosk.

The hub numbers the tickets it issues, and a kiosk numbers the tickets of a block the
hub reserved for it while the hub does not answer (docs/protocol.md, ``BlockRequest``).
Both must print the same number for the same sequence, and the hub checks a kiosk's
offline ticket against it, so the rule is written once, here.
"""

from __future__ import annotations

__all__ = ["MAX_DISPLAY_NUMBER", "display_number"]

MAX_DISPLAY_NUMBER = 999
"""Displayed numbers run 001…999 per service and day, then wrap to 001."""


def display_number(prefix: str, seq: int) -> str:
    """Turn a day sequence into what the citizen sees: ``A001``…``A999``, then ``A001``."""
    return f"{prefix}{(seq - 1) % MAX_DISPLAY_NUMBER + 1:03d}"
