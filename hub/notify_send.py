"""Sending citizens' notices: the channels, in a process of their own.

The channels (a web push encrypted with aes128gcm and signed with the hub's VAPID key,
an e-mail through ``[mail]``'s SMTP server, a text message through ``[notify]
sms_url``) cost CPU: encryption, signatures, HTTP and SMTP clients. In the hub's
process they would hold the interpreter's lock that the MQTT network thread and the
queue's writer wait for at each press. So they run in the *sending process* (a
Python of its own running :func:`main`), which the hub starts, watches and starts again,
at a lower CPU priority (``[notify] priority``), on ``[notify] workers`` threads.

The hub keeps the durable queue of notices (:mod:`hub.notify`): it claims the due
ones, hands a batch to :meth:`Sender.send` and records the :class:`Outcome` of each.
The sending process says when it *begins* a notice (before any byte goes out) and
what came of it. Should it die or stop answering mid-batch, the notices it never
began are handed back untried (sent again once it is started again); one it began
without saying what came of it was perhaps delivered, so it is not sent again (as
after a restart of the hub): a notice never goes twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import site
import smtplib
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from multiprocessing.connection import Connection, Pipe
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote_plus

import requests
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush

from common.mail_settings import CpuPriority, MailSettings, NotifySettings
from hub.mail import KEEP_S, Mailer

__all__ = ["Channels", "DeliveryError", "Notice", "Outcome", "Sender"]

log = logging.getLogger(__name__)

Key = tuple[str, str, str]
"""A notice's key: its ticket, kind and channel."""

RESTART_S: Final = 1.0
"""The shortest time between two starts of the sending process (a crash does not spin)."""

GATHER_S: Final = 0.02
"""How long the sending process's messages gather between two reads of the hub's: it
wakes for them a few dozen times a second, not twice a notice (each wake takes the
interpreter from the presses' thread)."""

GRACE_S: Final = 5.0
"""Added to the longest a notice may take before a silent sending process is stopped."""


class DeliveryError(Exception):
    """A notice was not delivered; ``retry``: the cause may pass, try again later.

    ``gone``: the contact is no more (a push subscription the browser dropped).
    """

    def __init__(self, reason: str, *, retry: bool, gone: bool = False) -> None:
        super().__init__(reason)
        self.retry = retry
        self.gone = gone


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice being sent: its key, what it says, and where it goes."""

    ticket: str
    number: str
    kind: str
    channel: str
    attempts: int
    contact: str
    subject: str
    body: str
    url: str | None

    @property
    def key(self) -> Key:
        """Its ticket, kind and channel."""
        return (self.ticket, self.kind, self.channel)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came of one notice handed to the sending process.

    ``sent``: delivered. Otherwise ``reason`` says why not; ``retry``: the cause may
    pass; ``gone``: the contact is no more; ``begun`` false: never tried (the sending
    process died first), so it may go later as if never claimed. ``trace``: the
    traceback of an unexpected error, for the log.
    """

    sent: bool
    reason: str | None = None
    retry: bool = False
    gone: bool = False
    begun: bool = True
    trace: str | None = None


SENT: Final = Outcome(sent=True)

INTERRUPTED: Final = Outcome(sent=False, reason="interrupted: perhaps delivered")
"""A notice begun by a sending process that died before it said what came of it."""

UNTRIED: Final = Outcome(sent=False, reason="not tried: the sending process stopped", begun=False)
"""A notice handed to a sending process that died (or was stopped) before it began it."""


@dataclass(frozen=True, slots=True)
class Setup:
    """What the sending process needs, sent to it first: the settings and the VAPID key."""

    notify: NotifySettings
    mail: MailSettings | None
    """``[mail]`` while e-mail is on."""
    vapid_pem: bytes | None
    """The hub's VAPID private key (PEM) while web push is on."""


# -- the channels (in the sending process) ----------------------------------------------


class Channels:
    """Delivers a :class:`Notice` through its channel: :meth:`deliver`, on any thread.

    ``mailer`` sends e-mail (``None``: no e-mail channel), ``vapid`` signs web pushes
    (``None``: no push channel); SMS goes while ``settings.sms_url`` is set.
    """

    def __init__(
        self, settings: NotifySettings, *, mailer: Mailer | None, vapid: Vapid02 | None
    ) -> None:
        self.settings = settings
        self.mailer = mailer
        self.vapid = vapid
        self._local = threading.local()

    def deliver(self, notice: Notice) -> None:
        """Send ``notice`` once; :class:`DeliveryError` when it was not delivered."""
        if notice.channel == "push":
            self._push(notice)
        elif notice.channel == "email":
            self._email(notice)
        else:
            self._sms(notice)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _push(self, notice: Notice) -> None:
        if self.vapid is None:
            raise DeliveryError("web push is off", retry=False)
        payload = {"title": notice.subject, "body": notice.body, "url": f"/t/{notice.ticket}"}
        try:
            webpush(
                json.loads(notice.contact),
                data=json.dumps(payload, ensure_ascii=False),
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.settings.vapid_subject},
                timeout=self.settings.timeout_s,
                ttl=self.settings.stale_min * 60,
                requests_session=self._session(),
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            gone = status in (404, 410)
            raise DeliveryError(
                f"push service: {status or exc}", retry=_passing(status), gone=gone
            ) from None
        except requests.RequestException as exc:
            raise DeliveryError(f"push service: {type(exc).__name__}", retry=True) from None

    def _email(self, notice: Notice) -> None:
        if self.mailer is None:
            raise DeliveryError("e-mail is off", retry=False)
        message = EmailMessage()
        message["To"] = notice.contact
        message["Subject"] = notice.subject
        message.set_content(notice.body)
        try:
            self.mailer.send_now(message)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code}", retry=exc.smtp_code < 500) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}", retry=True) from None

    def _sms(self, notice: Notice) -> None:
        config = self.settings
        if config.sms_url is None:
            raise DeliveryError("SMS is off", retry=False)
        text = f"{notice.body} {notice.url}" if notice.url else notice.body
        values = {
            "phone": notice.contact,
            "text": text,
            "number": notice.number,
            "ticket": notice.ticket,
        }
        url = _fill(config.sms_url, values, quote_plus)
        body = _fill(config.sms_body, values, _escaper(config.sms_content_type))
        headers = {"Content-Type": config.sms_content_type, **config.sms_headers}
        try:
            response = self._session().request(
                config.sms_method,
                url,
                data=body.encode() if config.sms_method != "GET" else None,
                headers=headers,
                timeout=config.timeout_s,
            )
        except requests.RequestException as exc:
            raise DeliveryError(f"SMS gateway: {type(exc).__name__}", retry=True) from None
        if response.status_code >= 300:
            status = response.status_code
            raise DeliveryError(f"SMS gateway: {status}", retry=_passing(status))

    def attempt(self, notice: Notice) -> Outcome:
        """Send ``notice`` once and say what came of it (never raises)."""
        try:
            self.deliver(notice)
        except DeliveryError as exc:
            return Outcome(sent=False, reason=str(exc)[:200], retry=exc.retry, gone=exc.gone)
        except Exception as exc:
            return Outcome(sent=False, reason=type(exc).__name__, trace=traceback.format_exc())
        return SENT


def _passing(status: int | None) -> bool:
    """Whether a failure with this HTTP status may pass (no answer, 429, 5xx)."""
    return status is None or status == 429 or status >= 500


def _escaper(content_type: str) -> Callable[[str], str]:
    """How a value goes into a body of ``content_type``."""
    if "json" in content_type:
        return lambda value: json.dumps(value, ensure_ascii=False)[1:-1]
    if "x-www-form-urlencoded" in content_type:
        return quote_plus
    return str


def _fill(template: str, values: Mapping[str, str], escape: Callable[[str], str]) -> str:
    """``template`` with each ``{name}`` of ``values`` replaced by its escaped value."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", escape(value))
    return template


LOW_NICE: Final = 10
"""How much lower in ``nice`` the sending process runs with ``[notify] priority = "low"``."""


def lower_priority(priority: CpuPriority) -> None:
    """Lower this process's CPU priority as ``[notify] priority`` says (see there).

    Before the process starts its threads: on Linux each thread has its own scheduling
    policy and niceness, and a new thread takes its creator's. Where the system refuses
    (a unit that filters the system call) or has no idle class (not Linux), the process
    keeps the hub's, with a warning.
    """
    try:
        if priority == "idle":
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif priority == "low":
            os.nice(LOW_NICE)
    except (OSError, AttributeError) as exc:
        log.warning("the notices' sending process keeps the hub's CPU priority: %s", exc)


def serve(conn: Connection) -> None:
    """The sending process: take batches of notices from ``conn`` and send them.

    The first message is the :class:`Setup`; then each is a list of notices, or
    ``None`` to stop (as is the hub's end of ``conn`` closing). For each notice it
    writes ``("begin", key)`` before sending and ``("done", key, outcome)`` after.
    """
    setup: Setup = conn.recv()
    lower_priority(setup.notify.priority)
    mailer = Mailer(setup.mail) if setup.mail is not None else None
    vapid = Vapid02.from_pem(setup.vapid_pem) if setup.vapid_pem is not None else None
    channels = Channels(setup.notify, mailer=mailer, vapid=vapid)
    writing = threading.Lock()

    def say(*message: Any) -> None:
        with writing, contextlib.suppress(OSError):  # the hub is gone: it will not ask
            conn.send(message)

    def send_one(notice: Notice) -> None:
        say("begin", notice.key)
        say("done", notice.key, channels.attempt(notice))

    with ThreadPoolExecutor(setup.notify.workers, thread_name_prefix="notice") as pool:
        while True:
            if mailer is not None:
                mailer.close_idle()  # at each batch, and at least every KEEP_S when quiet
            if not conn.poll(KEEP_S):
                continue
            try:
                batch: list[Notice] | None = conn.recv()
            except EOFError:
                break
            if batch is None:
                break
            for notice in batch:
                pool.submit(send_one, notice)


# -- the hub's end -----------------------------------------------------------------------


class Sender:
    """The hub's end of the sending process: starts it, hands it batches, watches it.

    Used by one thread (the notices' own). ``setup`` is sent to each process started;
    ``stop`` set: no process is started any more. Call :meth:`close` at the end.
    """

    def __init__(self, setup: Setup, stop: threading.Event) -> None:
        self.setup = setup
        self._stop = stop
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._started_at = -RESTART_S
        self.starts = 0
        """Sending processes started so far."""
        timeouts = [setup.notify.timeout_s, setup.mail.timeout_s if setup.mail else 0.0]
        self.silence_s = 3 * max(timeouts) + GRACE_S
        """How long the sending process may say nothing while notices are under way."""

    @property
    def pid(self) -> int | None:
        """The sending process's id, while one runs."""
        return self._process.pid if self._process is not None else None

    def send(self, notices: Sequence[Notice]) -> dict[Key, Outcome]:
        """Send ``notices`` in the sending process; what came of each, by key.

        Starts the process first when none runs. Should it die or stay silent for
        :attr:`silence_s` meanwhile, it is stopped (and started again at the next
        batch): what it had not begun is :data:`UNTRIED`, what it had begun without
        saying what came of it :data:`INTERRUPTED`.
        """
        outcomes: dict[Key, Outcome] = {}
        conn = self._running()
        if conn is None:
            return dict.fromkeys((notice.key for notice in notices), UNTRIED)
        begun: set[Key] = set()
        try:
            conn.send(list(notices))
            while True:
                if not conn.poll(self.silence_s):
                    self._lost(f"it said nothing for {self.silence_s:g} s")
                    break
                while conn.poll():
                    message = conn.recv()
                    if message[0] == "begin":
                        begun.add(message[1])
                    else:
                        outcomes[message[1]] = message[2]
                if len(outcomes) == len(notices):
                    break
                time.sleep(GATHER_S)
        except (EOFError, OSError):
            self._lost("it died")
        for notice in notices:
            if notice.key not in outcomes:
                outcomes[notice.key] = INTERRUPTED if notice.key in begun else UNTRIED
        return outcomes

    def _running(self) -> Connection | None:
        """The connection to the sending process, started when none runs.

        ``None`` when the hub is stopping.
        """
        if self._process is not None and self._process.poll() is not None:
            self._lost("it died")
        if self._conn is not None:
            return self._conn
        if self._stop.wait(max(0.0, self._started_at + RESTART_S - time.monotonic())):
            return None
        self._started_at = time.monotonic()
        ours, theirs = Pipe()
        fd = str(theirs.fileno())
        env = dict(os.environ)
        # The same code as the hub's when it runs from a checkout (an installed hub's
        # site-packages stays behind the standard library).
        root = str(Path(__file__).resolve().parent.parent)
        if root not in site.getsitepackages():
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-c", f"from {__name__} import main; main()", fd],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        ours.send(self.setup)
        self._conn = ours
        self.starts += 1
        if self.starts == 1:
            log.info("notices' sending process started (pid %d)", self._process.pid)
        else:
            log.warning("notices' sending process started again (pid %d)", self._process.pid)
        return ours

    def _lost(self, why: str) -> None:
        """The sending process died or hangs: stop it and forget it (logged)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        code = process.wait()
        log.error(
            "notices' sending process (pid %d) lost: %s (exit status %s); "
            "it is started again for the next notices",
            process.pid,
            why,
            code,
        )

    def close(self) -> None:
        """Stop the sending process (after the notices it is sending, for a while)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None or conn is None:
            return
        with contextlib.suppress(OSError):
            conn.send(None)
        conn.close()
        try:
            process.wait(self.silence_s)
        except subprocess.TimeoutExpired:
            log.warning("notices' sending process (pid %d) did not stop: killed", process.pid)
            process.kill()
            process.wait()


def main() -> None:
    """The sending process, on the connection whose file descriptor is its argument.

    Its classes come from this module by its name (not ``__main__``): what it sends
    back unpickles in the hub. It ignores SIGINT and SIGTERM (a Ctrl-C, or systemd
    stopping the hub's unit, reach it too): it stops when the hub closes its end, after
    the notices under way, so that none is cut off while the hub still waits for it.
    """
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING, format="notices' sending process: %(levelname)s %(message)s"
    )
    serve(Connection(int(sys.argv[1])))
