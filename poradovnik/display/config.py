"""``[display]``: the settings of a lobby display: its screen, its sound and its LED boards.

Only pydantic is imported here, so that the settings module can gather this section
without pulling in the role's hardware libraries.
"""

from __future__ import annotations

from poradovnik.common.section import Section

__all__ = ["DisplaySettings"]


class DisplaySettings(Section):
    """``[display]``: a lobby display: its screen, its sound and its LED boards (display only)."""
