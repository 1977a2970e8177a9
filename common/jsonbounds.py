"""Nesting bounds for untrusted JSON, measured before a parser recurses into it.

Python's json module recurses once per level of arrays and objects: a few kilobytes
of ``[`` make it raise RecursionError, which no caller expects. Every JSON text that
comes from outside, an MQTT payload (:func:`sync_agent.protocol.load_object`) or a
web request's body (:mod:`hub.web.jsonbody`), is measured here first.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["too_deep"]

_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
"""A JSON string, whose brackets do not count. An unclosed one runs to the end, so
each byte is read once (a pattern that needs the closing quote would read the rest
of the text again from every escaped quote: seconds for 64 KiB)."""

_PAIR: Final = re.compile(rb"[\[{][\]}]")
"""An innermost array or object, once everything but brackets is gone."""

_NOT_BRACKETS: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))


def too_deep(text: str | bytes, limit: int) -> bool:
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
