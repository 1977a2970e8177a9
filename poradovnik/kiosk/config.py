"""``[kiosk]``: the settings of a ticket kiosk: its screen, its printer and offline issuing.

Only pydantic is imported here, so that the settings module can gather this section
without pulling in the role's hardware libraries.
"""

from __future__ import annotations

from poradovnik.common.section import Section

__all__ = ["KioskSettings"]


class KioskSettings(Section):
    """``[kiosk]``: a ticket kiosk: its screen, its printer and offline issuing (kiosk only)."""
