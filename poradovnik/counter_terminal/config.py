"""``[counter]``: the settings of a counter panel: its buttons, lights and optional panel display.

Only pydantic is imported here, so that the settings module can gather this section
without pulling in the role's hardware libraries.
"""

from __future__ import annotations

from poradovnik.common.section import Section

__all__ = ["CounterSettings"]


class CounterSettings(Section):
    """``[counter]``: a counter panel's buttons, lights and panel display (counter only)."""
