"""JSON request bodies read with bounds: nesting depth, on top of the size limit.

Python's json module recurses once per level: a body of 30,000 ``[`` raises
RecursionError, which no caller expects. :class:`BoundedJSONProvider` measures the
nesting before parsing and refuses a deeper body with ValueError, which Flask turns
into a 400 (and the API into its ``invalid`` error). Bodies are at most
``MAX_CONTENT_LENGTH`` (64 KiB), so the measuring costs little.
"""

from __future__ import annotations

from typing import Any, Final

from flask.json.provider import DefaultJSONProvider

from common.jsonbounds import too_deep

__all__ = ["MAX_JSON_DEPTH", "BoundedJSONProvider"]

MAX_JSON_DEPTH: Final = 32
"""The deepest nesting of arrays and objects a body may have (the API's need at most 3)."""


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing bodies nested deeper than :data:`MAX_JSON_DEPTH`."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse ``s``; ValueError when it is nested too deep (or not JSON)."""
        if too_deep(s, MAX_JSON_DEPTH):
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return super().loads(s, **kwargs)
