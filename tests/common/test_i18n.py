"""Every role's texts: one gettext catalog per language, complete, compiled as shipped,
read on the devices without Flask or Babel; and the one rule for a service's name."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from i18n_helpers import po_path, read_catalog

from common.errors import PoradovnikError
from common.i18n import LANGUAGES, messages, service_name

DEVICE_ROLES = ("kiosk", "lobby", "counter_terminal")
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def texts(cat: Catalog) -> dict[object, object]:
    def key(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {key(m.id): key(m.string) for m in cat if m.id}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("package", [*DEVICE_ROLES, "hub.web"])
def test_the_shipped_mo_file_is_the_compiled_po_file(package: str, lang: str) -> None:
    po = read_catalog(package, lang)
    with po_path(package, lang).with_suffix(".mo").open("rb") as file:
        shipped = read_mo(file)
    fresh = io.BytesIO()
    write_mo(fresh, po)
    fresh.seek(0)
    assert texts(shipped) == texts(read_mo(fresh))


@pytest.mark.parametrize("package", DEVICE_ROLES)
def test_every_language_has_every_text_with_the_same_placeholders(package: str) -> None:
    english = {str(k): str(v) for k, v in texts(read_catalog(package, "en")).items()}
    # How a letter is spoken is given only where a language's voice needs it.
    required = {key for key in english if not key.startswith("letters.")}
    for lang in LANGUAGES:
        found = {str(k): str(v) for k, v in texts(read_catalog(package, lang)).items()}
        assert required <= set(found), lang
        assert all(found[key] for key in found), lang
        for key in required:
            wanted = sorted(PLACEHOLDER.findall(english[key]))
            assert sorted(PLACEHOLDER.findall(found[key])) == wanted, (lang, key)


def test_a_text_is_read_and_filled_in() -> None:
    kiosk = messages("kiosk", "sk")
    assert kiosk.text("confirm.ahead", ahead=3) == "Pred vami: 3"
    assert kiosk.has("confirm.ahead")
    assert not kiosk.has("confirm.nothing")
    assert kiosk.text("confirm.nothing") == "confirm.nothing"
    assert messages("counter_terminal", "uk").lang == "uk"


def test_a_language_without_texts_is_one_clear_error() -> None:
    with pytest.raises(PoradovnikError, match="kiosk has no texts in language 'de'"):
        messages("kiosk", "de")


def test_a_device_reads_its_texts_without_flask_or_babel() -> None:
    code = (
        "import sys, common.i18n, kiosk.catalog, lobby.catalog, counter_terminal.desk; "
        "common.i18n.messages('kiosk', 'cs'); lobby.catalog.catalog('uk'); "
        "print(sorted(m for m in ('flask', 'babel') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


def test_one_rule_for_a_service_name() -> None:
    names = {"sk": "Dane", "en": "Taxes", "cs": "Daně"}
    assert service_name(names, "en", "taxes") == "Taxes"
    assert service_name(names, "uk", "taxes") == "Dane"  # the default language, Slovak
    assert service_name({"en": "Taxes", "cs": "Daně"}, "uk", "taxes") == "Taxes"  # the first
    assert service_name({"sk": ""}, "uk", "taxes") == "taxes"  # a blank name is no name
    assert service_name({}, "sk", "taxes") == "taxes"
