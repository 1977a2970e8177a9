"""The one base class of failures whose message is meant for the person running us."""

from __future__ import annotations


class PoradovnikError(Exception):
    """An expected failure: its message says what is wrong and, where it can, what to do.

    The command line prints it as ``poradovnik: <message>`` and exits with status 1,
    without a traceback. Anything else that escapes is a bug and keeps its traceback.
    """
