"""The kiosk's texts in Slovak, Czech, Ukrainian and English, from its message catalogs.

Every text a citizen sees or hears (screen, ticket, voice) comes from
``kiosk/messages/<lang>.toml``: one TOML file per language, with the same
keys in each (a test checks that). Texts may hold ``{placeholders}``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.errors import PoradovnikError

__all__ = ["LANGUAGES", "Catalog", "spoken_number", "wait_minutes"]

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"
"""Where the catalogs live (shipped as package data)."""

LANGUAGES = ("sk", "cs", "uk", "en")
"""Every language the kiosk speaks."""

_DAYS = {"Mon": "mon", "Tue": "tue", "Wed": "wed", "Thu": "thu", "Fri": "fri", "Sat": "sat"}
_DAYS["Sun"] = "sun"


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


class Catalog:
    """The texts of one language: ``catalog.text("confirm.ahead", ahead=3)``."""

    def __init__(self, lang: str, texts: dict[str, str]) -> None:
        self.lang = lang
        self.texts = texts

    @classmethod
    def load(cls, lang: str, directory: Path = MESSAGES_DIR) -> Catalog:
        """Read the catalog of ``lang``; :class:`PoradovnikError` if it is missing or broken."""
        path = directory / f"{lang}.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PoradovnikError(f"cannot read the kiosk's {lang} texts {path}: {exc}") from None
        return cls(lang, _flatten(data))

    @classmethod
    def load_all(cls, langs: Iterable[str] = LANGUAGES) -> dict[str, Catalog]:
        """The catalogs of ``langs``, by language."""
        return {lang: cls.load(lang) for lang in langs}

    def text(self, key: str, **values: object) -> str:
        """The text ``key`` with its placeholders filled in; the key itself if it is missing."""
        template = self.texts.get(key)
        if template is None:
            return key
        return template.format(**values) if values else template

    def has(self, key: str) -> bool:
        """Whether the catalog has the text ``key``."""
        return key in self.texts

    def hours(self, described: str) -> str:
        """Translate the hub's opening hours (``Mon 08:00-12:00; …``) into this language."""
        if described in ("always", "closed"):
            return self.text(f"days.{described}")
        return re.sub(
            r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\b",
            lambda m: self.text(f"days.{_DAYS[m.group(1)]}"),
            described,
        )


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
