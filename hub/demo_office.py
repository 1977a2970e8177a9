"""The demo office: the first-contact services of the seed city and five counters.

``poradovnik db seed --demo`` loads it, the demo runs on it and the tests use it,
so that everyone looks at the same office.
"""

from __future__ import annotations

from hub.model import Counter, Service

SERVICES: tuple[Service, ...] = (
    Service(
        code="taxes",
        prefix="A",
        names={
            "sk": "Miestne dane",
            "cs": "Místní daně",
            "uk": "Місцеві податки",
            "en": "Local taxes",
        },
        default_service_time_s=420,
    ),
    Service(
        code="waste",
        prefix="B",
        names={
            "sk": "Komunálny odpad",
            "cs": "Komunální odpad",
            "uk": "Побутові відходи",
            "en": "Municipal waste",
        },
        default_service_time_s=240,
    ),
    Service(
        code="parking",
        prefix="C",
        names={"sk": "Parkovanie", "cs": "Parkování", "uk": "Паркування", "en": "Parking"},
        default_service_time_s=300,
    ),
    Service(
        code="info",
        prefix="D",
        names={
            "sk": "Všeobecné informácie",
            "cs": "Obecné informace",
            "uk": "Загальна інформація",
            "en": "General information",
        },
        default_service_time_s=120,
    ),
)
"""The four services of the seed city's first-contact office, in kiosk order."""

COUNTERS: tuple[Counter, ...] = (
    Counter("1", "Okienko 1", ("taxes", "waste")),
    Counter("2", "Okienko 2", ("taxes",)),
    Counter("3", "Okienko 3", ("waste", "parking")),
    Counter("4", "Okienko 4", ("parking", "info")),
    Counter("5", "Okienko 5", ("info", "taxes", "waste", "parking")),
)
"""Five counters; the fifth serves everything, in the clerk's order of preference."""
