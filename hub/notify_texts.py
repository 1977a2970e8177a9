"""The citizens' notices in each of the office's languages (sk, cs, uk, en).

Each kind of notice has a subject (a push's title, an e-mail's subject) and a body,
formatted with ``{number}`` (the ticket's), ``{ahead}`` (people ahead), ``{counter}``
(where to go), ``{service}`` and ``{office}``; :data:`EMAIL_FOOTER` follows an
e-mail's body with ``{url}`` (the my-ticket page) and ``{grace_min}``.
"""

from __future__ import annotations

from typing import Final

from common.i18n import Language

__all__ = ["EMAIL_FOOTER", "KINDS", "TEXTS", "Text"]

Text = tuple[str, str]
"""A subject and a body."""

KINDS: Final = ("ahead", "called")
"""Every kind of notice: few people ahead, and the call."""

TEXTS: Final[dict[Language, dict[str, Text]]] = {
    "sk": {
        "ahead": (
            "{number}: čoskoro ste na rade",
            "Pred vaším lístkom {number} ({service}) sú už len {ahead} ľudia. Vráťte sa, "
            "prosím, do čakárne.",
        ),
        "called": (
            "{number}: ste na rade, choďte k {counter}",
            "Váš lístok {number} ({service}) je vyvolaný. Choďte, prosím, k {counter}.",
        ),
    },
    "cs": {
        "ahead": (
            "{number}: brzy jste na řadě",
            "Před vaším lístkem {number} ({service}) jsou už jen {ahead} lidé. Vraťte se, "
            "prosím, do čekárny.",
        ),
        "called": (
            "{number}: jste na řadě, jděte k {counter}",
            "Váš lístek {number} ({service}) je vyvolán. Jděte, prosím, k {counter}.",
        ),
    },
    "uk": {
        "ahead": (
            "{number}: незабаром ваша черга",
            "Перед вашим талоном {number} ({service}) залишилося лише {ahead} людей. "
            "Будь ласка, поверніться до зали очікування.",
        ),
        "called": (
            "{number}: ваша черга, підійдіть до {counter}",
            "Ваш талон {number} ({service}) викликано. Будь ласка, підійдіть до {counter}.",
        ),
    },
    "en": {
        "ahead": (
            "{number}: your turn is near",
            "Only {ahead} people are ahead of your ticket {number} ({service}). Please come "
            "back to the waiting room.",
        ),
        "called": (
            "{number}: your turn, go to {counter}",
            "Your ticket {number} ({service}) has been called. Please go to {counter}.",
        ),
    },
}

EMAIL_FOOTER: Final[dict[Language, str]] = {
    "sk": "Váš lístok: {url}\n\n{office}. Vašu adresu vymažeme {grace_min} minút po "
    "skončení lístka.",
    "cs": "Váš lístek: {url}\n\n{office}. Vaši adresu smažeme {grace_min} minut po "
    "skončení lístku.",
    "uk": "Ваш талон: {url}\n\n{office}. Вашу адресу буде видалено через {grace_min} "
    "хвилин після завершення талона.",
    "en": "Your ticket: {url}\n\n{office}. We erase your address {grace_min} minutes "
    "after your ticket ends.",
}
