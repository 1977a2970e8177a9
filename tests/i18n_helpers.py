"""Reading a role's gettext catalogs as the translators edit them (the .po files)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po


def po_path(package: str, lang: str) -> Path:
    """The ``.po`` file of ``package`` (``kiosk``, ``hub.web``…) in ``lang``."""
    root = Path(str(resources.files(package)))
    return root / "translations" / lang / "LC_MESSAGES" / "messages.po"


def read_catalog(package: str, lang: str) -> Catalog:
    with po_path(package, lang).open("rb") as file:
        return read_po(file, locale=lang)


def catalog_ids(package: str, lang: str) -> set[str]:
    """The message ids of a device role's catalog (keys such as ``confirm.ahead``)."""
    return {str(message.id) for message in read_catalog(package, lang) if message.id}
