"""E-mail and alerts: a real SMTP server (aiosmtpd) receives what the hub sends.

Devices go offline and run out of paper on a real Mosquitto; the disk threshold
is the real disk's free space against a setting; the backup fails for real (its
folder is a file).
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from mail_helpers import Inbox, self_signed, smtp_server
from office_helpers import OfficeBroker, RunningHub
from process_helpers import Process, poradovnik_args
from prometheus_client.parser import text_string_to_metric_families

from common.settings import (
    AlertSettings,
    BackupSettings,
    DataSettings,
    MailSettings,
    Settings,
    SettingsError,
    SiteSettings,
    load_settings,
    settings_warnings,
)
from hub.alerts import ALERTS_FILE, Alerts
from hub.bridge import DeviceView
from hub.broker import free_port
from hub.mail import Mailer
from hub.maintenance import Maintenance
from hub.store import Store
from sync_agent import protocol as p
from sync_agent.link import DeviceLink

WAIT_S = 10.0
IT = "it@office.example"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def mailers() -> Iterator[Callable[..., Mailer]]:
    started: list[Mailer] = []

    def start(settings: MailSettings, **options: Any) -> Mailer:
        mailer = Mailer(settings, **options).start()
        started.append(mailer)
        return mailer

    yield start
    for mailer in started:
        mailer.stop()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The hub's data directory, made: where the alerts keep their file."""
    made = tmp_path / "alerts"
    made.mkdir()
    return made


def alert_settings(data_dir: Path, inbox: Inbox, lang: str = "en", **alerts: Any) -> Settings:
    options: dict[str, Any] = {"offline_after_s": 0, "disk_free_min_mb": 0, **alerts}
    return Settings(
        role="hub",
        site=SiteSettings(name="Test Office", languages=(lang,)),  # type: ignore[arg-type]
        data=DataSettings(dir=data_dir),
        mail=inbox.settings(),
        alerts=AlertSettings(to=(IT, "boss@office.example"), **options),
    )


def message(subject: str, to: str = IT) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = subject
    mail["To"] = to
    mail.set_content("body")
    return mail


def nothing_more(mailer: Mailer, inbox: Inbox) -> None:
    """No e-mail came since the last one read: a marker sent now is the next to arrive."""
    mailer.send(message("marker"))
    assert inbox.next()["Subject"] == "marker"


# -- the mailer ------------------------------------------------------------------------


def test_a_message_goes_out_with_the_sender_date_and_id(
    inbox: Inbox, mailers: Callable[..., Mailer]
) -> None:
    mailer = mailers(inbox.settings())
    assert mailer.send(message("Hello, IT"))
    got = inbox.next()
    assert got["Subject"] == "Hello, IT"
    assert got["From"] == "poradovnik@office.example"
    assert got["X-Envelope-To"] == IT
    assert got["Date"]
    assert got["Message-ID"].endswith("@office.example>")
    assert got.get_content().strip() == "body"


def test_messages_sent_at_once_share_a_connection_that_is_replaced_once_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with smtp_server() as first:
        mailer = Mailer(first.settings())
        for subject in ("one", "two", "three"):
            mailer.send_now(message(subject))
        assert [first.next()["Subject"] for _ in range(3)] == ["one", "two", "three"]
        assert first.greetings == 1
    # The server restarted: the kept connection is dead, the message takes a new one.
    with smtp_server(port=first.port) as second:
        mailer.send_now(message("after the restart"))
        assert second.next()["Subject"] == "after the restart"
        assert second.greetings == 1
        # Kept no longer than KEEP_S after a message: then it is quit and made anew.
        monkeypatch.setattr("hub.mail.KEEP_S", 0.0)
        mailer.send_now(message("after a pause"))
        assert second.next()["Subject"] == "after a pause"
        assert second.greetings == 2
        # ... and quit when nothing follows: the next message takes a new one.
        assert mailer.close_idle() == 1
        assert mailer.close_idle() == 0
        monkeypatch.setattr("hub.mail.KEEP_S", 30.0)
        mailer.send_now(message("after the quiet"))
        assert second.next()["Subject"] == "after the quiet"
        assert second.greetings == 3


def test_a_refused_message_is_tried_again_after_a_pause(
    inbox: Inbox, mailers: Callable[..., Mailer], caplog: pytest.LogCaptureFixture
) -> None:
    inbox.refuse = ["451 4.3.0 try again later", "421 4.3.2 busy"]
    mailer = mailers(inbox.settings(), backoff_s=(0.01, 0.01, 0.01))
    with caplog.at_level(logging.WARNING, logger="hub.mail"):
        mailer.send(message("alert"))
        assert inbox.next()["Subject"] == "alert"
    assert [inbox.refused.get_nowait(), inbox.refused.get_nowait()] == [
        "451 4.3.0 try again later",
        "421 4.3.2 busy",
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "tried again in 0.01 s" in warnings[0]
    assert "451 4.3.0 try again later" in warnings[0]
    mailer.stop()  # the attempt under way ends (QUIT)
    assert mailer.sent == 1


def test_a_message_is_given_up_after_the_last_attempt(
    inbox: Inbox, mailers: Callable[..., Mailer], caplog: pytest.LogCaptureFixture
) -> None:
    inbox.refuse = ["554 5.7.1 no"] * 3
    mailer = mailers(inbox.settings(), backoff_s=(0.01, 0.01))
    with caplog.at_level(logging.ERROR, logger="hub.mail"):
        mailer.send(message("doomed"))
        for _ in range(3):
            inbox.refused.get(timeout=WAIT_S)
        mailer.stop()  # waits for the attempt under way
    assert mailer.failed == 1
    assert mailer.sent == 0
    assert any("given up" in r.getMessage() and "554" in r.getMessage() for r in caplog.records)


class GivenUp(logging.Handler):
    """Counts the mailer's "given up" lines; :attr:`all_done` is set at the ``expected``-th."""

    def __init__(self, expected: int) -> None:
        super().__init__(logging.ERROR)
        self.expected = expected
        self.count = 0
        self.all_done = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "given up" in record.getMessage():
            self.count += 1
            if self.count >= self.expected:
                self.all_done.set()


def test_an_unreachable_server_is_logged_and_nothing_blocks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = MailSettings(
        host="127.0.0.1", port=free_port(), sender="a@b.example", starttls=False
    )
    mailer = Mailer(settings, backoff_s=(), max_queued=2)  # its thread starts below
    given_up = GivenUp(expected=2)
    logging.getLogger("hub.mail").addHandler(given_up)
    try:
        with caplog.at_level(logging.ERROR, logger="hub.mail"):
            # The queue is bounded: two wait, the rest are dropped at once, and logged.
            accepted = [mailer.send(message(f"m{n}")) for n in range(10)]
            assert accepted == [True, True] + [False] * 8
            mailer.start()
            assert given_up.all_done.wait(WAIT_S)  # the two that waited were tried, in vain
    finally:
        mailer.stop()
        logging.getLogger("hub.mail").removeHandler(given_up)
    assert mailer.failed == 10
    assert any("dropped" in r.getMessage() for r in caplog.records)


# aiosmtpd warns of AUTH without STARTTLS, which with TLS from the first byte is fine.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "tls"])
def test_login_over_tls_with_the_offices_ca(
    tmp_path: Path, mailers: Callable[..., Mailer], implicit_tls: bool
) -> None:
    certificate = self_signed(tmp_path)
    login = ("poradovnik", "mail-password-1")
    with smtp_server(certificate=certificate, implicit_tls=implicit_tls, login=login) as inbox:
        settings = inbox.settings(
            starttls=not implicit_tls,
            tls=implicit_tls,
            ca_file=certificate[0],
            username=login[0],
            password=login[1],
        )
        mailer = mailers(settings)
        mailer.send(message("over TLS"))
        assert inbox.next()["Subject"] == "over TLS"


def test_a_server_certificate_the_ca_does_not_vouch_for_is_refused(
    tmp_path: Path, mailers: Callable[..., Mailer], caplog: pytest.LogCaptureFixture
) -> None:
    ours = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other = self_signed(tmp_path / "other")
    with smtp_server(certificate=ours) as inbox:
        mailer = mailers(inbox.settings(starttls=True, ca_file=other[0]), backoff_s=())
        with caplog.at_level(logging.ERROR, logger="hub.mail"):
            mailer.send(message("to an impostor"))
            mailer.stop()
        assert inbox.received.empty()
    assert mailer.failed == 1
    assert any("CERTIFICATE_VERIFY_FAILED" in r.getMessage() for r in caplog.records)


def test_a_wrong_password_is_logged_without_the_password(
    tmp_path: Path, mailers: Callable[..., Mailer], caplog: pytest.LogCaptureFixture
) -> None:
    certificate = self_signed(tmp_path)
    with smtp_server(certificate=certificate, login=("poradovnik", "right-password")) as inbox:
        settings = inbox.settings(
            starttls=True, ca_file=certificate[0], username="poradovnik", password="wrong-password"
        )
        mailer = mailers(settings, backoff_s=())
        with caplog.at_level(logging.ERROR, logger="hub.mail"):
            mailer.send(message("refused"))
            mailer.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("535" in line for line in errors), errors
    assert not any("wrong-password" in line for line in caplog.text.splitlines())


def test_a_message_that_cannot_be_sent_is_dropped_and_the_next_goes_out(
    inbox: Inbox, mailers: Callable[..., Mailer], caplog: pytest.LogCaptureFixture
) -> None:
    mailer = mailers(inbox.settings(), backoff_s=(0.01,))
    broken = message("broken")
    broken.set_payload(12345)  # type: ignore[arg-type]  # no generator can write it
    with caplog.at_level(logging.ERROR, logger="hub.mail"):
        assert mailer.send(broken)
        mailer.send(message("fine"))
        assert inbox.next()["Subject"] == "fine"
    assert mailer.failed == 1
    assert any(
        "'broken' to it@office.example cannot be sent" in r.getMessage() for r in caplog.records
    )


def test_a_message_without_recipients_is_a_mistake(inbox: Inbox) -> None:
    nobody = EmailMessage()
    nobody["Subject"] = "to whom?"
    with pytest.raises(ValueError, match="needs a recipient"):
        Mailer(inbox.settings()).send(nobody)


def test_mail_is_off_without_a_host() -> None:
    mailer = Mailer(MailSettings()).start()
    assert not mailer.enabled
    assert not mailer.send(message("nobody reads this"))
    mailer.stop()


# -- the settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[mail]\nhost = "smtp.example"\n', "[mail] sender: is required with host"),
        ('[mail]\nhost = "smtp.example"\nsender = "not an address"\n', "plain e-mail address"),
        ('[mail]\nusername = "hub"\n', "[mail] password: set username and password both"),
        ('[mail]\npassword = "secret-1"\n', "[mail] password: set username and password both"),
        (
            '[mail]\nusername = "hub"\npassword = "secret-1"\nstarttls = false\n',
            "[mail] tls: logging in without TLS would send the password in clear",
        ),
        ("[mail]\nport = 0\n", "[mail] port"),
        ("[mail]\ntimeout_s = 0\n", "[mail] timeout_s"),
        ('[alerts]\nto = ["it@kosice.sk", "<evil>\\r\\nBcc: x@y.z"]\n', "plain e-mail address"),
        ("[alerts]\ndisk_free_min_mb = -1\n", "[alerts] disk_free_min_mb"),
        ('[web]\nmetrics_from = ["10.0.0.0/33"]\n', "must be an address or network"),
    ],
)
def test_check_config_explains_bad_mail_alert_and_metrics_settings(
    tmp_path: Path, toml: str, problem: str
) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('role = "hub"\n' + toml, encoding="utf-8")
    with pytest.raises(SettingsError) as raised:
        load_settings(path, env={})
    assert problem in str(raised.value)
    assert "secret-1" not in str(raised.value)


def test_alerts_without_mail_are_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text('role = "hub"\n[alerts]\nto = ["it@b.example"]\n', encoding="utf-8")
    warnings = settings_warnings(load_settings(path, env={}))
    assert any("[alerts] to is set, but [mail] host is not" in w for w in warnings)


def test_port_465_means_tls_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(
        'role = "hub"\n[mail]\nhost = "smtp.example"\nport = 465\nsender = "a@b.example"\n'
        '[alerts]\nto = ["it@b.example"]\n[web]\nmetrics_from = ["10.0.0.0/8", "::1"]\n',
        encoding="utf-8",
    )
    settings = load_settings(path, env={})
    assert settings.mail.enabled
    assert settings.mail.implicit_tls
    assert not MailSettings(host="h", port=587, sender="a@b.example").implicit_tls
    assert settings.web.metrics_from == ("10.0.0.0/8", "::1")


# -- alerts: devices on a real broker --------------------------------------------------


def wait_for(
    heard: queue.Queue[DeviceView], device_id: str, test: Callable[[DeviceView], bool]
) -> None:
    while True:
        view = heard.get(timeout=WAIT_S)
        if view.device_id == device_id and test(view):
            return


def test_a_device_offline_is_mailed_once_survives_a_restart_and_is_resolved(
    hub: RunningHub,
    device: Callable[..., DeviceLink],
    inbox: Inbox,
    mailers: Callable[..., Mailer],
    tmp_path: Path,
) -> None:
    settings = alert_settings(tmp_path / "alerts", inbox)
    mailer = mailers(settings.mail)
    alerts = Alerts(settings, mailer, devices=lambda: dict(hub.bridge.devices))
    heard: queue.Queue[DeviceView] = queue.Queue()
    running = [alerts]  # the hub's alerts now (one at a time: a restart replaces them)

    def heard_by_running(view: DeviceView) -> None:
        running[0].device_heard(view)

    hub.bridge.on_device(heard_by_running)
    hub.bridge.on_device(heard.put)
    kiosk = device("kiosk-k1")
    wait_for(heard, "k1", lambda v: v.status is not None and v.status.state == "online")
    kiosk.stop()
    wait_for(heard, "k1", lambda v: v.status is not None and v.status.state == "offline")
    mail = inbox.next()
    assert mail["Subject"] == "Test Office: device k1 is offline"
    assert mail["X-Envelope-To"] == f"{IT}, boss@office.example"
    assert "Device k1 (kiosk) has not been reaching the hub since" in mail.get_content()
    alerts.check()
    alerts.check()
    nothing_more(mailer, inbox)

    # The hub restarts: the alert under way is not mailed again.
    again = Alerts(settings, mailer, devices=lambda: dict(hub.bridge.devices))
    assert set(again.active) == {"offline:k1"}
    running[0] = again
    again.check()
    nothing_more(mailer, inbox)

    device("kiosk-k1")
    resolved = inbox.next()
    assert resolved["Subject"] == "Resolved: Test Office: device k1 is offline"
    assert "The cause of this alert ended at" in resolved.get_content()
    assert again.active == {}
    nothing_more(mailer, inbox)


def test_a_printers_paper_is_mailed_per_state_and_resolved(
    hub: RunningHub,
    device: Callable[..., DeviceLink],
    inbox: Inbox,
    mailers: Callable[..., Mailer],
    tmp_path: Path,
) -> None:
    settings = alert_settings(tmp_path / "alerts", inbox, lang="sk")
    mailer = mailers(settings.mail)
    alerts = Alerts(settings, mailer, devices=lambda: dict(hub.bridge.devices))
    hub.bridge.on_device(alerts.device_heard)
    kiosk = device("kiosk-k2")
    kiosk.publish_health({"printer": p.PartHealth(state="paper_near_end")})
    assert inbox.next()["Subject"] == "Test Office: v tlačiarni k2 dochádza papier"
    kiosk.publish_health({"printer": p.PartHealth(state="paper_near_end", detail="still")})
    kiosk.publish_health({"printer": p.PartHealth(state="paper_out")})
    out = inbox.next()  # the repeated near end was no news
    assert out["Subject"] == "Test Office: v tlačiarni k2 došiel papier"
    assert "Tlačiareň printer zariadenia k2 nemá papier" in out.get_content()
    kiosk.publish_health({"printer": p.PartHealth(state="ok")})
    resolved = inbox.next()
    assert resolved["Subject"] == "Vyriešené: Test Office: v tlačiarni k2 došiel papier"
    nothing_more(mailer, inbox)


def test_a_short_absence_is_no_alert(
    inbox: Inbox, mailers: Callable[..., Mailer], tmp_path: Path
) -> None:
    settings = alert_settings(tmp_path / "alerts", inbox, offline_after_s=120)
    mailer = mailers(settings.mail)
    went = datetime(2026, 12, 7, 9, 0, tzinfo=ZoneInfo("UTC"))
    now = [went]
    status = p.DeviceStatus(state="offline", role="display", at=went)
    devices = {"d1": DeviceView("d1", status=status, last_seen=went)}
    alerts = Alerts(settings, mailer, devices=lambda: devices, clock=lambda: now[0])
    now[0] = went + timedelta(seconds=119)
    alerts.check()  # a restart, perhaps: not yet
    nothing_more(mailer, inbox)
    now[0] = went + timedelta(seconds=120)
    alerts.check()
    mail = inbox.next()
    assert mail["Subject"] == "Test Office: device d1 is offline"
    assert "since 2026-12-07 10:00" in mail.get_content()  # the office's time (CET)
    # The hub itself is no device to alert about.
    devices["hub"] = DeviceView("hub", status=status, last_seen=went)
    alerts.check()
    nothing_more(mailer, inbox)


# -- alerts: the disk and the backup ---------------------------------------------------


def test_a_full_disk_is_mailed_once_across_restarts_then_resolved(
    inbox: Inbox, mailers: Callable[..., Mailer], data: Path
) -> None:
    full = alert_settings(data, inbox, disk_free_min_mb=10_000_000)  # 10 TB: never free
    mailer = mailers(full.mail)
    Alerts(full, mailer).check()
    mail = inbox.next()
    assert mail["Subject"] == "Test Office: the hub's disk is filling up"
    assert f"The disk of {data} has " in mail.get_content()
    assert "(threshold 10000000 MB)" in mail.get_content()
    assert (data / ALERTS_FILE).exists()
    restarted = Alerts(full, mailer)
    restarted.check()
    restarted.check()
    nothing_more(mailer, inbox)
    relaxed = alert_settings(data, inbox, disk_free_min_mb=1)
    Alerts(relaxed, mailer).check()
    assert inbox.next()["Subject"] == "Resolved: Test Office: the hub's disk is filling up"
    nothing_more(mailer, inbox)


def test_a_damaged_alerts_file_starts_afresh(
    inbox: Inbox, mailers: Callable[..., Mailer], data: Path
) -> None:
    settings = alert_settings(data, inbox, disk_free_min_mb=10_000_000)
    for junk in ("{not json", '["a list"]', '{"disk": {"kind": "nonsense"}}'):
        (data / ALERTS_FILE).write_text(junk, encoding="utf-8")
        mailer = mailers(settings.mail)
        assert Alerts(settings, mailer).active == {}


def test_a_failed_backup_is_mailed_in_the_offices_language_then_resolved(
    inbox: Inbox, mailers: Callable[..., Mailer], tmp_path: Path
) -> None:
    blocked = tmp_path / "stick"
    blocked.write_text("not a folder: the stick is not mounted")
    settings = alert_settings(tmp_path / "data", inbox, lang="cs").model_copy(
        update={"backup": BackupSettings(at=time(2, 30), dir=blocked)}
    )
    mailer = mailers(settings.mail)
    alerts = Alerts(settings, mailer)
    tz = ZoneInfo("Europe/Bratislava")
    now = [datetime(2026, 12, 6, 3, 0, tzinfo=tz)]
    with Store(settings.database_url) as store:
        store.upgrade()
        chores = Maintenance(settings, store, clock=lambda: now[0], on_backup=alerts.backup_done)
        chores.run_due()
        mail = inbox.next()
        assert mail["Subject"] == "Test Office: záloha databáze selhala"
        assert "Noční záloha databáze hubu selhala:" in mail.get_content()
        now[0] += timedelta(hours=2)
        chores.run_due()  # fails again: no news
        nothing_more(mailer, inbox)
        blocked.unlink()
        now[0] += timedelta(hours=2)
        assert any("nightly backup" in done for done in chores.run_due())
    assert inbox.next()["Subject"] == "Vyřešeno: Test Office: záloha databáze selhala"
    nothing_more(mailer, inbox)


# -- the hub process -------------------------------------------------------------------


def test_the_running_hub_mails_its_alerts_and_shows_its_mail_queue(
    tmp_path: Path,
    broker: OfficeBroker,
    inbox: Inbox,
    processes: Callable[..., Process],
) -> None:
    web_port = free_port()
    data = tmp_path / "data"
    config = tmp_path / "poradovnik.toml"
    config.write_text(
        f'role = "hub"\n[data]\ndir = "{data}"\n'
        f'[mqtt]\nport = {broker.port}\nusername = "hub"\npassword = "{broker.passwords["hub"]}"\n'
        f"[web]\nport = {web_port}\n"
        f'[mail]\nhost = "127.0.0.1"\nport = {inbox.port}\nsender = "hub@office.example"\n'
        "starttls = false\n"
        f'[alerts]\nto = ["{IT}"]\ndisk_free_min_mb = 10000000\n',
        encoding="utf-8",
    )
    hub = processes(poradovnik_args("--config", str(config), "hub"), name="hub", cwd=tmp_path)
    mail = inbox.next()
    assert mail["Subject"] == "Mestský úrad: na disku hubu dochádza miesto"
    assert mail["From"] == "hub@office.example"
    hub.wait_for_line(lambda line: "web pages on" in line, WAIT_S * 3, what="its web address")
    url = f"http://127.0.0.1:{web_port}/metrics"
    with urllib.request.urlopen(url, timeout=WAIT_S) as answer:
        text = answer.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    sent = samples[("poradovnik_mail_total", (("outcome", "sent"),))]
    waiting = samples[("poradovnik_outbox_messages", (("outbox", "mail"),))]
    assert sent + waiting >= 1  # the alert (sent, or still closing the connection)
    assert samples[("poradovnik_mail_total", (("outcome", "failed"),))] == 0
    assert ("poradovnik_outbox_messages", (("outbox", "mqtt"),)) in samples
    assert hub.stop(signal.SIGTERM, timeout=WAIT_S * 3) == 0, hub.describe()
    assert "Traceback" not in hub.output()
    assert "alerts go to it@office.example" in hub.output()
