"""The kiosk's texts in Slovak, Czech, Ukrainian and English, from its message catalogs.

Every text a citizen sees or hears (screen, ticket, voice) comes from the kiosk's
gettext catalogs, ``kiosk/translations/<lang>/LC_MESSAGES/messages.po`` (read through
:mod:`common.i18n`), with the same keys in each (a test checks that). Texts may hold
``{placeholders}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from common.i18n import LANGUAGES, Messages, messages

__all__ = ["LANGUAGES", "Catalog", "spoken_number", "wait_minutes"]

_DAYS = {"Mon": "mon", "Tue": "tue", "Wed": "wed", "Thu": "thu", "Fri": "fri", "Sat": "sat"}
_DAYS["Sun"] = "sun"


class Catalog:
    """The texts of one language: ``catalog.text("confirm.ahead", ahead=3)``."""

    def __init__(self, texts: Messages) -> None:
        self.lang = texts.lang
        self._texts = texts

    @classmethod
    def load(cls, lang: str) -> Catalog:
        """Read the catalog of ``lang``; :class:`PoradovnikError` if it is missing or broken."""
        return cls(messages("kiosk", lang))

    @classmethod
    def load_all(cls, langs: Iterable[str] = LANGUAGES) -> dict[str, Catalog]:
        """The catalogs of ``langs``, by language."""
        return {lang: cls.load(lang) for lang in langs}

    def text(self, key: str, **values: object) -> str:
        """The text ``key`` with its placeholders filled in; the key itself if it is missing."""
        return self._texts.text(key, **values)

    def has(self, key: str) -> bool:
        """Whether the catalog has the text ``key``."""
        return self._texts.has(key)

    def hours(self, described: str) -> str:
        """Translate the hub's opening hours (``Mon 08:00-12:00; …``) into this language."""
        if described in ("always", "closed"):
            return self.text(f"days.{described}")
        return re.sub(
            r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b",
            lambda m: self.text(f"days.{_DAYS[m.group(1)]}"),
            described,
        )

    def opening(self, opens_at: datetime, now: datetime) -> str:
        """When a closed service opens, as ``Opens at 13:00`` today, else with the day.

        ``opens_at`` is in the site's zone (as the hub sends it); ``now`` decides what
        today is.
        """
        clock = opens_at.strftime("%H:%M")
        if now.astimezone(opens_at.tzinfo).date() == opens_at.date():
            return self.text("start.opens_today", time=clock)
        day = self.text(f"days.{_DAYS[opens_at.strftime('%a')]}")
        date = self.text("start.date", day=opens_at.day, month=opens_at.month)
        return self.text("start.opens_on", day=day, date=date, time=clock)


def wait_minutes(seconds: int) -> int:
    """A wait in whole minutes as citizens are told it: rounded up, at least one."""
    return max(1, -(-seconds // 60))


def spoken_number(number: str) -> str:
    """A ticket number as a voice should read it: ``A042`` becomes ``A 42``."""
    match = re.fullmatch(r"([A-Za-z]*)0*(\d+)", number)
    if match is None:
        return number
    letters, digits = match.groups()
    return f"{letters} {digits}".strip()
