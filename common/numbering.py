"""How a ticket's day sequence becomes the number a citizen sees, on the hub and on a kiosk.

The hub numbers the tickets it issues, and a kiosk numbers the tickets of a block the
hub reserved for it while the hub does not answer (docs/protocol.md, ``BlockRequest``).
Both must print the same number for the same sequence, and the hub checks a kiosk's
offline ticket against it, so the rule is written once, here.
"""

from __future__ import annotations

__all__ = ["MAX_DISPLAY_NUMBER", "OFFLINE_SEQ_TOP", "ONLINE_SEQ_LAST", "display_number"]

MAX_DISPLAY_NUMBER = 999
"""Displayed numbers run 001…999 per service and day, then wrap to 001."""

ONLINE_SEQ_LAST = MAX_DISPLAY_NUMBER * 1000
"""The hub numbers the tickets it issues 1, 2, 3… up to this sequence (a thousand rounds
of 001…999); the sequences above it belong to kiosks' offline blocks (docs/queue.md)."""

OFFLINE_SEQ_TOP = MAX_DISPLAY_NUMBER * 2000
"""A day's first offline block ends at this sequence (shown as 999); later blocks take
the sequences below the earlier ones, down to ``ONLINE_SEQ_LAST + 1``."""


def display_number(prefix: str, seq: int) -> str:
    """Turn a day sequence into what the citizen sees: ``A001``…``A999``, then ``A001``."""
    return f"{prefix}{(seq - 1) % MAX_DISPLAY_NUMBER + 1:03d}"
