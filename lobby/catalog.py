"""What the lobby display says, per language: screen labels and announcement texts.

Each language has a gettext catalog, ``lobby/translations/<lang>/LC_MESSAGES/messages.po``
(read through :mod:`common.i18n`), with the espeak-ng voice for the language
(``voice``), the screen's labels (``labels.<key>``), the announcement templates
(``speech.call`` and ``speech.recall``) and the spoken form of ticket letters
(``letters.<letter>``, only where the voice gets a letter wrong). Only the standard
library is needed, so the hub's web page can use the same texts.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import cache

from common.errors import PoradovnikError
from common.i18n import LANGUAGES, messages

__all__ = ["LABELS", "LANGUAGES", "Catalog", "catalog", "split_ticket"]

LABELS = (
    "ticket",
    "counter",
    "now_calling",
    "recall",
    "last_calls",
    "waiting",
    "estimate",
    "closed",
    "no_calls",
    "offline",
    "pairing_title",
    "pairing_waiting",
    "pairing_no_broker",
    "pairing_checking",
    "pairing_paired",
    "appointment",
    "remote",
    "cut_off",
    "opens_today",
    "opens_on",
    "date",
    "priority",
)
"""The screen's labels every catalog has (the pairing screen's among them)."""

SPEECH = ("call", "recall")
"""The announcement templates every catalog has: a first call, and a recall."""

_TICKET = re.compile(r"^(\D*)0*(\d+)$")


def split_ticket(number: str) -> tuple[str, str]:
    """Split a ticket number into its letters and its number without leading zeros.

    ``A042`` gives ``("A", "42")``: espeak-ng would read ``042`` as "zero forty-two".
    A number without digits is all letters.
    """
    match = _TICKET.match(number)
    if match is None:
        return number, ""
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class Catalog:
    """The texts of one language."""

    lang: str
    voice: str
    """The espeak-ng voice."""
    labels: dict[str, str]
    speech: dict[str, str]
    letters: dict[str, str] = field(default_factory=dict)

    def label(self, key: str, **values: object) -> str:
        """A screen label, with ``{placeholders}`` filled from ``values``."""
        return self.labels[key].format(**values)

    def announcement(self, ticket: str, counter: str, *, recall: bool) -> str:
        """The sentence announcing ``ticket`` at ``counter``: ``Lístok A 42, okienko 3``."""
        letters, number = split_ticket(ticket)
        spoken = " ".join(self.letters.get(letter, letter) for letter in letters)
        template = self.speech["recall" if recall else "call"]
        return template.format(letter=spoken, number=number, counter=counter).strip()


@cache
def catalog(lang: str) -> Catalog:
    """The catalog of ``lang``; raises :class:`PoradovnikError` if it is missing or broken."""
    texts = messages("lobby", lang)
    wanted = ["voice", *(f"labels.{key}" for key in LABELS), *(f"speech.{key}" for key in SPEECH)]
    missing = [key for key in wanted if not texts.has(key)]
    if missing:
        raise PoradovnikError(f"the display's {lang} texts lack {', '.join(missing)}")
    # Ticket letters are A-Z (the admin's prefix); a catalog names only those it respells.
    letters = {c: text for c in string.ascii_uppercase if (text := texts.get(f"letters.{c}"))}
    return Catalog(
        lang,
        texts.text("voice"),
        {key: texts.text(f"labels.{key}") for key in LABELS},
        {key: texts.text(f"speech.{key}") for key in SPEECH},
        letters,
    )
