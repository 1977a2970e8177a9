"""JSON request bodies read with bounds: nesting depth, on top of the size limit.

Python's json module recurses once per level: a body of 30,000 ``[`` raises
RecursionError, which no caller expects. :class:`BoundedJSONProvider` measures the
nesting before parsing and refuses a deeper body with ValueError, which Flask turns
into a 400 (and the API into its ``invalid`` error). Bodies are at most
``MAX_CONTENT_LENGTH`` (64 KiB), so the measuring costs little.
"""

from __future__ import annotations

import re
from typing import Any, Final

from flask.json.provider import DefaultJSONProvider

__all__ = ["MAX_JSON_DEPTH", "BoundedJSONProvider", "too_deep"]

MAX_JSON_DEPTH: Final = 32
"""The deepest nesting of arrays and objects a body may have (the API's need at most 3)."""

_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
"""A JSON string, whose brackets do not count. An unclosed one runs to the end, so
each byte is read once (a pattern that needs the closing quote would read the rest
of the text again from every escaped quote: seconds for 64 KiB)."""

_PAIR: Final = re.compile(rb"[\[{][\]}]")
"""An innermost array or object, once everything but brackets is gone."""

_NOT_BRACKETS: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))


def too_deep(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in the JSON ``text`` nest deeper than ``limit``.

    Brackets inside strings do not count; brackets that do not pair up (not JSON
    anyway) count as too deep. The work is ``limit`` passes over the brackets, in C,
    whatever the text holds.
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        inner = _PAIR.sub(b"", brackets)  # one level less everywhere
        if inner == brackets:
            return True
        brackets = inner
    return bool(brackets)


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing bodies nested deeper than :data:`MAX_JSON_DEPTH`."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse ``s``; ValueError when it is nested too deep (or not JSON)."""
        if too_deep(s):
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        return super().loads(s, **kwargs)
