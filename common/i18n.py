"""The languages of the appliance and the texts of each role, from gettext catalogs.

Every role keeps its texts the same way: a gettext catalog per language in
``<package>/translations/<lang>/LC_MESSAGES/messages.po``, compiled beside it to
``messages.mo`` (``pybabel compile -d <package>/translations``; a test checks that each
shipped ``.mo`` is its compiled ``.po``). The hub's web pages read theirs through
Flask-Babel; the devices read theirs here, with the standard library's :mod:`gettext`,
so a device needs neither Flask nor Babel. A device's message ids are keys such as
``confirm.ahead``; texts may hold ``{placeholders}``, filled in by :meth:`Messages.text`.

This module also holds the list of languages (:data:`LANGUAGES`) and the one rule for
choosing a service's name in a language (:func:`service_name`).
"""

from __future__ import annotations

import gettext
import struct
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Final, Literal, get_args

from common.errors import PoradovnikError

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Language", "Messages", "messages", "service_name"]

Language = Literal["sk", "cs", "uk", "en"]
"""A language the appliance speaks and prints: Slovak, Czech, Ukrainian, English."""

LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)
"""Every language the appliance has texts in, the default first."""

DEFAULT_LANGUAGE: Final[Language] = LANGUAGES[0]
"""Slovak: the language of the offices the appliance is made for."""


def service_name(names: Mapping[str, str], lang: str, code: str) -> str:
    """The name of a service for a citizen reading ``lang``.

    The one rule every role follows: the name in ``lang``, else in the default language
    (Slovak), else the first name the service has, else its ``code``. A blank name is
    no name.
    """
    candidates = (names.get(lang), names.get(DEFAULT_LANGUAGE), *names.values())
    return next((name for name in candidates if name), code)


class _Missing(gettext.NullTranslations):
    """The fallback of a catalog: a message it lacks raises :class:`KeyError`."""

    def gettext(self, message: str) -> str:
        raise KeyError(message)


class Messages:
    """A role's texts in one language: ``texts.text("confirm.ahead", ahead=3)``."""

    def __init__(self, lang: str, translations: gettext.GNUTranslations) -> None:
        self.lang = lang
        translations.add_fallback(_Missing())
        self._translations = translations

    def get(self, key: str) -> str | None:
        """The text ``key`` as written in the catalog, or ``None`` if it has none."""
        try:
            return self._translations.gettext(key)
        except KeyError:
            return None

    def has(self, key: str) -> bool:
        """Whether the catalog has the text ``key``."""
        return self.get(key) is not None

    def text(self, key: str, **values: object) -> str:
        """The text ``key`` with its placeholders filled in; the key itself if it is missing."""
        template = self.get(key)
        if template is None:
            return key
        return template.format(**values) if values else template


@cache
def messages(package: str, lang: str) -> Messages:
    """The texts of ``package`` (a role's package, e.g. ``kiosk``) in ``lang``.

    Raises :class:`PoradovnikError` if the language is not one of :data:`LANGUAGES`, or
    its catalog is missing or unreadable.
    """
    if lang not in LANGUAGES:
        raise PoradovnikError(f"{package} has no texts in language {lang!r}")
    path = resources.files(package).joinpath("translations", lang, "LC_MESSAGES", "messages.mo")
    try:
        with path.open("rb") as file:
            translations = gettext.GNUTranslations(file)
    except (OSError, UnicodeDecodeError, struct.error) as exc:
        msg = f"cannot read the {lang} texts of {package} ({path}): {exc}"
        raise PoradovnikError(msg) from None
    return Messages(lang, translations)
