"""The one base class of failures whose message is meant for the person running us."""

from __future__ import annotations

from collections.abc import Mapping

Params = Mapping[str, str | int]
"""The values a refusal's text names (a service's code, a limit…), by placeholder."""


class PoradovnikError(Exception):
    """An expected failure: its message says what is wrong and, where it can, what to do.

    The command line prints it as ``poradovnik: <message>`` and exits with status 1,
    without a traceback. Anything else that escapes is a bug and keeps its traceback.

    The message is English, for the command line and the log. ``code`` names the
    failure for pages that tell it in their reader's language (the hub's pages keep
    one text per code, ``hub.web.refusals``), ``detail`` a finer reason where one code
    covers several, and ``params`` the values those texts name.
    """

    code: str = "refused"
    """What went wrong, stable across versions (the API returns it)."""

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        detail: str | None = None,
        params: Params | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.detail = detail
        self.params: Params = dict(params or {})
