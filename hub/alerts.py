"""Alerts: e-mail to the office's IT when a device, a printer, the disk or the backup needs them.

:class:`Alerts` looks at the causes it knows of, from time to time and whenever
a device reports (the MQTT bridge's ``on_device``) or a backup ends
(:class:`~hub.maintenance.Maintenance`'s ``on_backup``):

* a device offline (its retained status, the last will) for ``[alerts]
  offline_after_s``;
* a printer's paper running out, or out (the device's retained health, part by
  part);
* less than ``[alerts] disk_free_min_mb`` free on the disk of ``[data] dir``;
* a failed nightly backup.

Each cause is mailed once when it starts (a printer whose paper runs out and
then is out: once each) and, with ``[alerts] resolved``, once when it ends; not
again while it lasts. The alerts under way are kept in ``[data] dir``/``alerts.json``,
so a restarted hub does not mail them again; a cause of which a restarted hub
knows nothing yet (a device not heard of since) stays as it was until it is
heard of. E-mail goes through :class:`~hub.mail.Mailer`, never waiting for it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Final, Protocol

from common.identity import HUB_DEVICE_ID
from common.logthrottle import ThrottledLog
from common.settings import Settings
from hub.alert_texts import FOOTER, KINDS, RESOLVED, TEXTS
from hub.bridge import DeviceView
from hub.mail import Mailer
from hub.service import utc_now

__all__ = ["ALERTS_FILE", "CHECK_S", "Alert", "Alerts", "DiskUsage"]

log = logging.getLogger(__name__)

ALERTS_FILE: Final = "alerts.json"
"""The alerts under way, in ``[data] dir``."""

CHECK_S: Final = 30.0
"""How often the causes are looked at besides when a device reports."""

PAPER_STATES: Final = frozenset({"paper_near_end", "paper_out"})
"""The printer states that are alerts (their names are the alerts' kinds)."""

_MB: Final = 1024 * 1024


class DiskUsage(Protocol):
    """What :func:`shutil.disk_usage` tells (the field used)."""

    @property
    def free(self) -> int:
        """Bytes free for the hub."""


@dataclass(frozen=True)
class Alert:
    """One alert under way: its kind (see :data:`~hub.alert_texts.KINDS`), values, start."""

    kind: str
    values: dict[str, str] = field(default_factory=dict)
    since: datetime = field(default_factory=utc_now)

    def to_json(self) -> dict[str, object]:
        """The alert as :data:`ALERTS_FILE` keeps it."""
        return {"kind": self.kind, "values": self.values, "since": self.since.isoformat()}

    @classmethod
    def from_json(cls, data: object) -> Alert | None:
        """The alert :meth:`to_json` wrote; ``None`` for anything else."""
        if not isinstance(data, dict):
            return None
        kind, values, since = data.get("kind"), data.get("values"), data.get("since")
        if kind not in KINDS or not isinstance(values, dict) or not isinstance(since, str):
            return None
        try:
            at = datetime.fromisoformat(since)
        except ValueError:
            return None
        return cls(kind, {str(k): str(v) for k, v in values.items()}, at)


class Alerts:
    """The hub's alerts: finds their causes, mails each start and end once.

    ``devices`` gives the devices as the bridge knows them (``HubBridge.devices``);
    ``disk_usage`` and ``clock`` stand in for :func:`shutil.disk_usage` and the time.
    """

    def __init__(
        self,
        settings: Settings,
        mailer: Mailer,
        *,
        devices: Callable[[], Mapping[str, DeviceView]] = dict,
        clock: Callable[[], datetime] = utc_now,
        disk_usage: Callable[[Path], DiskUsage] = shutil.disk_usage,
    ) -> None:
        self.settings = settings
        self.mailer = mailer
        self.devices = devices
        self.clock = clock
        self.disk_usage = disk_usage
        self.path = settings.data.dir / ALERTS_FILE
        self._lock = threading.Lock()
        self._active: dict[str, Alert] = self._load()
        self._backup_error: str | None = None
        self._backup_ok = False
        self._problems = ThrottledLog(log, interval_s=3600.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poradovnik-alerts", daemon=True)

    @property
    def active(self) -> dict[str, Alert]:
        """The alerts under way, by their cause's key (a copy)."""
        with self._lock:
            return dict(self._active)

    # -- what tells of causes ----------------------------------------------------------

    def device_heard(self, _view: DeviceView) -> None:
        """A bridge listener (``on_device``): a device's status or health came."""
        self._check_logged()

    def backup_done(self, error: str | None) -> None:
        """A maintenance listener: the nightly backup was made (``None``) or failed."""
        with self._lock:
            self._backup_error = error
            self._backup_ok = error is None
        self._check_logged()

    def _check_logged(self) -> None:
        """:meth:`check` for a listener: a failure is logged, never the caller's."""
        try:
            self.check()
        except Exception:
            log.exception("looking for alerts failed")

    # -- the look ------------------------------------------------------------------------

    def check(self) -> None:
        """Look at every cause; mail the alerts that started and the ones that ended."""
        with self._lock:
            now = self.clock()
            found, ended = self._causes(now)
            outgoing: list[EmailMessage] = []
            for key, alert in found.items():
                known = self._active.get(key)
                if known is not None and known.kind == alert.kind:
                    continue
                self._active[key] = alert
                log.warning("alert: %s", self._text(alert)[0])
                outgoing.append(self._message(alert))
            for key in ended & self._active.keys():
                alert = self._active.pop(key)
                log.info("alert ended: %s", self._text(alert)[0])
                if self.settings.alerts.resolved:
                    outgoing.append(self._message(alert, ended_at=now))
            if outgoing:
                self._save()
        for message in outgoing:
            self.mailer.send(message)

    def _causes(self, now: datetime) -> tuple[dict[str, Alert], set[str]]:
        """The causes present now (by key), and the keys of causes known to be absent."""
        found: dict[str, Alert] = {}
        ended: set[str] = set()
        config = self.settings.alerts
        for device_id, view in self.devices().items():
            if device_id == HUB_DEVICE_ID:
                continue
            offline = view.status is not None and view.status.state == "offline"
            key = f"offline:{device_id}"
            if offline:
                assert view.status is not None
                since = view.status.at or view.last_seen or now
                if now - since >= timedelta(seconds=config.offline_after_s):
                    role = view.status.role or "?"
                    found[key] = Alert("device_offline", {"device": device_id, "role": role}, since)
                continue  # an offline device's health is stale: its alerts stay as they are
            if view.status is not None:
                ended.add(key)
            if view.health is None:
                continue
            prefix = f"paper:{device_id}:"
            ended.update(k for k in self._active if k.startswith(prefix))
            for part, health in view.health.parts.items():
                if health.state in PAPER_STATES:
                    values = {"device": device_id, "part": part}
                    found[prefix + part] = Alert(health.state, values, now)
        if config.disk_free_min_mb:
            directory = self.settings.data.dir
            try:
                free_mb = self.disk_usage(directory).free // _MB
            except OSError as exc:
                self._problems.log(
                    logging.WARNING,
                    "disk",
                    "cannot tell the free space of %s: %s",
                    directory,
                    exc.strerror,
                )
            else:
                if free_mb < config.disk_free_min_mb:
                    values = {
                        "dir": str(directory),
                        "free_mb": str(free_mb),
                        "min_mb": str(config.disk_free_min_mb),
                    }
                    found["disk"] = Alert("disk_low", values, now)
                else:
                    ended.add("disk")
        if self._backup_error is not None:
            found["backup"] = Alert("backup_failed", {"error": self._backup_error}, now)
        elif self._backup_ok:
            ended.add("backup")
        ended.difference_update(found)
        return found, ended

    # -- the e-mails ----------------------------------------------------------------------

    def _text(self, alert: Alert) -> tuple[str, str]:
        """The alert's subject and body, in the office's language."""
        lang = self.settings.site.default_language
        subject, body = TEXTS[lang][alert.kind]
        values = {
            **alert.values,
            "site": self.settings.site.name,
            "since": self._local(alert.since),
        }
        text = body.format_map(values) + FOOTER[lang].format_map(values)
        return subject.format_map(values), text

    def _message(self, alert: Alert, *, ended_at: datetime | None = None) -> EmailMessage:
        subject, body = self._text(alert)
        if ended_at is not None:
            wrap_subject, wrap_body = RESOLVED[self.settings.site.default_language]
            at = self._local(ended_at)
            subject, body = (
                wrap_subject.format(subject=subject),
                wrap_body.format(at=at, body=body),
            )
        message = EmailMessage()
        message["Subject"] = " ".join(subject.split())  # one line, whatever a value holds
        message["To"] = ", ".join(self.settings.alerts.to)
        message.set_content(body)
        return message

    def _local(self, at: datetime) -> str:
        return at.astimezone(self.settings.site.tzinfo).strftime("%Y-%m-%d %H:%M")

    # -- the file ------------------------------------------------------------------------

    def _load(self) -> dict[str, Alert]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning(
                "alerts under way unknown (%s unreadable: %s); starting afresh", self.path, exc
            )
            return {}
        if not isinstance(data, dict):
            return {}
        loaded = {str(key): Alert.from_json(value) for key, value in data.items()}
        return {key: alert for key, alert in loaded.items() if alert is not None}

    def _save(self) -> None:
        """Write the alerts under way (atomically); a failure is logged, not raised."""
        data = {key: alert.to_json() for key, alert in self._active.items()}
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot record the alerts under way in %s: %s", self.path, exc.strerror)

    # -- the thread ----------------------------------------------------------------------

    def start(self) -> Alerts:
        """Look at the causes now and every :data:`CHECK_S` on a thread of its own."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            self._check_logged()
            if self._stop.wait(CHECK_S):
                return
