"""The alert e-mails' texts, in each of the office's languages (sk, cs, uk, en).

Each kind of alert has a subject and a body, formatted with the alert's values
(``{device}``, ``{site}`` …: see :mod:`hub.alerts`); :data:`RESOLVED` wraps an
alert's subject and body when its cause has ended.
"""

from __future__ import annotations

from typing import Final

from common.i18n import Language

__all__ = ["FOOTER", "KINDS", "RESOLVED", "TEXTS", "Text"]

Text = tuple[str, str]
"""A subject and a body."""

KINDS: Final = ("device_offline", "paper_near_end", "paper_out", "disk_low", "backup_failed")
"""Every kind of alert."""

TEXTS: Final[dict[Language, dict[str, Text]]] = {
    "sk": {
        "device_offline": (
            "{site}: zariadenie {device} je offline",
            "Zariadenie {device} ({role}) sa od {since} nehlási hubu. Skontrolujte jeho "
            "napájanie a sieť.",
        ),
        "paper_near_end": (
            "{site}: v tlačiarni {device} dochádza papier",
            "Tlačiareň {part} zariadenia {device} hlási, že papier sa míňa. Doplňte kotúč.",
        ),
        "paper_out": (
            "{site}: v tlačiarni {device} došiel papier",
            "Tlačiareň {part} zariadenia {device} nemá papier: lístky sa netlačia. Doplňte kotúč.",
        ),
        "disk_low": (
            "{site}: na disku hubu dochádza miesto",
            "Na disku s {dir} zostáva {free_mb} MB voľného miesta (hranica {min_mb} MB). "
            "Uvoľnite miesto, inak hub prestane zapisovať.",
        ),
        "backup_failed": (
            "{site}: záloha databázy zlyhala",
            "Nočná záloha databázy hubu zlyhala: {error}\nHub ju skúsi znova o hodinu.",
        ),
    },
    "cs": {
        "device_offline": (
            "{site}: zařízení {device} je offline",
            "Zařízení {device} ({role}) se od {since} nehlásí hubu. Zkontrolujte jeho "
            "napájení a síť.",
        ),
        "paper_near_end": (
            "{site}: v tiskárně {device} dochází papír",
            "Tiskárna {part} zařízení {device} hlásí, že papír dochází. Doplňte kotouč.",
        ),
        "paper_out": (
            "{site}: v tiskárně {device} došel papír",
            "Tiskárna {part} zařízení {device} nemá papír: lístky se netisknou. Doplňte kotouč.",
        ),
        "disk_low": (
            "{site}: na disku hubu dochází místo",
            "Na disku s {dir} zbývá {free_mb} MB volného místa (hranice {min_mb} MB). "
            "Uvolněte místo, jinak hub přestane zapisovat.",
        ),
        "backup_failed": (
            "{site}: záloha databáze selhala",
            "Noční záloha databáze hubu selhala: {error}\nHub ji zkusí znovu za hodinu.",
        ),
    },
    "uk": {
        "device_offline": (
            "{site}: пристрій {device} не в мережі",
            "Пристрій {device} ({role}) не відповідає хабу з {since}. Перевірте його "
            "живлення та мережу.",
        ),
        "paper_near_end": (
            "{site}: у принтері {device} закінчується папір",
            "Принтер {part} пристрою {device} повідомляє, що папір закінчується. Замініть рулон.",
        ),
        "paper_out": (
            "{site}: у принтері {device} закінчився папір",
            "Принтер {part} пристрою {device} не має паперу: талони не друкуються. Замініть рулон.",
        ),
        "disk_low": (
            "{site}: на диску хаба закінчується місце",
            "На диску з {dir} залишилося {free_mb} МБ вільного місця (поріг {min_mb} МБ). "
            "Звільніть місце, інакше хаб перестане записувати.",
        ),
        "backup_failed": (
            "{site}: резервне копіювання бази даних не вдалося",
            "Нічна резервна копія бази даних хаба не вдалася: {error}\n"
            "Хаб спробує знову за годину.",
        ),
    },
    "en": {
        "device_offline": (
            "{site}: device {device} is offline",
            "Device {device} ({role}) has not been reaching the hub since {since}. Check its "
            "power and network.",
        ),
        "paper_near_end": (
            "{site}: printer of {device} is running out of paper",
            "Printer {part} of device {device} reports that its paper is running out. "
            "Put in a new roll.",
        ),
        "paper_out": (
            "{site}: printer of {device} is out of paper",
            "Printer {part} of device {device} has no paper: no tickets are printed. "
            "Put in a new roll.",
        ),
        "disk_low": (
            "{site}: the hub's disk is filling up",
            "The disk of {dir} has {free_mb} MB free (threshold {min_mb} MB). Free some "
            "space, or the hub will stop recording.",
        ),
        "backup_failed": (
            "{site}: the database backup failed",
            "The hub's nightly database backup failed: {error}\nThe hub tries again in an hour.",
        ),
    },
}
"""Each language's subject and body of each kind of alert."""

RESOLVED: Final[dict[Language, Text]] = {
    "sk": ("Vyriešené: {subject}", "Príčina tohto upozornenia pominula o {at}:\n\n{body}"),
    "cs": ("Vyřešeno: {subject}", "Příčina tohoto upozornění pominula v {at}:\n\n{body}"),
    "uk": ("Вирішено: {subject}", "Причина цього сповіщення зникла о {at}:\n\n{body}"),
    "en": ("Resolved: {subject}", "The cause of this alert ended at {at}:\n\n{body}"),
}
"""The subject and body of the e-mail that says an alert's cause has ended."""

FOOTER: Final[dict[Language, str]] = {
    "sk": "\n\n-- \nPoradovník, hub pracoviska {site} (od {since})",
    "cs": "\n\n-- \nPoradovník, hub pracoviště {site} (od {since})",
    "uk": "\n\n-- \nPoradovník, хаб відділення {site} (з {since})",
    "en": "\n\n-- \nPoradovník, the hub of {site} (since {since})",
}
"""The end of every alert e-mail: which hub sent it, since when the cause lasts."""
