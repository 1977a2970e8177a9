"""E-mail from the hub: a :class:`Mailer` sends messages through ``[mail]``'s SMTP server.

:meth:`Mailer.send` only puts a message in a bounded in-memory queue and returns
at once: a thread of its own talks to the SMTP server, so no caller (the queue's
listeners, the MQTT thread, a web request) ever waits for the network. A message
that fails is tried again after growing pauses (:data:`BACKOFF_S`), each failure
logged with its reason; after the last one it is given up, with an error in the
log. Messages go out one at a time, in order.

The queue is not durable: what waits when the hub stops is lost (and logged).
Alerts are made again from their causes; mail that must not be lost needs a
durable queue in front of :meth:`Mailer.send`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import smtplib
import ssl
import threading
import time
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final

from common.settings import MailSettings

__all__ = ["BACKOFF_S", "Mailer"]

log = logging.getLogger(__name__)

BACKOFF_S: Final = (10.0, 60.0, 300.0, 900.0, 3600.0)
"""Pauses before each next attempt of a message that failed; then it is given up."""

MAX_QUEUED: Final = 200
"""Messages waiting at most; a message sent while so many wait is dropped (logged)."""

KEEP_S: Final = 30.0
"""How long after a message :meth:`Mailer.send_now` may send the next through the same
connection: a busy moment's notices share one connection (one TLS handshake and login).
A connection idle longer is quit (:meth:`Mailer.close_idle`, or the next message)."""

_STOP: Final = object()


class Mailer:
    """Sends :class:`~email.message.EmailMessage` objects through an SMTP server.

    ``settings`` is ``[mail]``; while its ``host`` is not set, :meth:`send` drops
    every message (the hub sends no e-mail). ``backoff_s`` are the pauses between
    attempts. Call :meth:`start` before sending and :meth:`stop` at the end.
    """

    def __init__(
        self,
        settings: MailSettings,
        *,
        backoff_s: Sequence[float] = BACKOFF_S,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.settings = settings
        self.backoff_s = tuple(backoff_s)
        self._queue: queue.Queue[EmailMessage | object] = queue.Queue(max_queued)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poradovnik-mail", daemon=True)
        self._busy = False
        self._context: ssl.SSLContext | None = None
        self._tls_lock = threading.Lock()
        self._idle: dict[int, tuple[smtplib.SMTP, float]] = {}
        """:meth:`send_now`'s open connections not in use, by thread: each with its last use.
        A thread takes its own out while it sends; the lock guards the dict."""
        self._idle_lock = threading.Lock()
        self.sent = 0
        """Messages the SMTP server accepted since the start."""
        self.failed = 0
        """Messages given up since the start (every attempt failed, or the queue was full)."""

    @property
    def enabled(self) -> bool:
        """Whether e-mail goes out (``[mail] host`` is set)."""
        return self.settings.enabled

    @property
    def pending(self) -> int:
        """Messages waiting to be sent (the one being tried included)."""
        return self._queue.qsize() + self._busy

    def start(self) -> Mailer:
        """Start the sending thread (when mail is on)."""
        if self.enabled:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the attempt under way; what still waits is dropped (and logged)."""
        self._stop.set()
        if self._thread.is_alive():
            # When the queue is full, the thread sees the stop after its current message.
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(_STOP)
            self._thread.join(self.settings.timeout_s * 3)

    def send(self, message: EmailMessage) -> bool:
        """Queue ``message`` (without From: it gets ``[mail] sender``); never blocks.

        Returns whether it was queued: not when mail is off, the mailer is stopped, or
        too many messages wait already. A message without recipients is a ValueError.
        """
        if not any(message.get_all(field) for field in ("To", "Cc", "Bcc")):
            msg = "an e-mail needs a recipient (To, Cc or Bcc)"
            raise ValueError(msg)
        if not self.enabled or self._stop.is_set():
            return False
        self._complete(message)
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.failed += 1
            log.error(
                "e-mail %r to %s dropped: %d messages wait already (is the SMTP server %s down?)",
                message["Subject"],
                message["To"],
                self._queue.maxsize,
                self.settings.host,
            )
            return False
        return True

    def send_now(self, message: EmailMessage) -> None:
        """Send ``message`` at once, in one attempt, on the caller's thread.

        For callers that keep a durable queue of their own and try again themselves
        (citizens' notices, :mod:`hub.notify`). Raises :class:`OSError` or
        :class:`smtplib.SMTPException` when the server cannot be reached or refuses it,
        and RuntimeError while mail is off.

        The thread's connection is kept for its next message within :data:`KEEP_S`,
        which goes through it once the server has answered a ``NOOP`` on it, or else
        through a new connection: a connection the server closed while idle costs a
        new one, not a failed message. A failed message closes its connection.
        """
        if not self.enabled:
            msg = "mail is off: [mail] host is not set"
            raise RuntimeError(msg)
        self._complete(message)
        smtp = self._take_kept()
        try:
            smtp.send_message(message)
        except BaseException:
            _close(smtp)
            raise
        with self._idle_lock:
            self._idle[threading.get_ident()] = (smtp, time.monotonic())

    def close_idle(self) -> int:
        """Quit the connections :meth:`send_now` kept that are idle :data:`KEEP_S`; how many.

        Safe on any thread: a connection being used is not among them.
        """
        now = time.monotonic()
        with self._idle_lock:
            old = [t for t, (_, at) in self._idle.items() if now - at > KEEP_S]
            idle = [self._idle.pop(t)[0] for t in old]
        for smtp in idle:
            _close(smtp, quit_first=True)
        return len(idle)

    def _take_kept(self) -> smtplib.SMTP:
        """The calling thread's kept connection, if it is recent and answers; else a new one."""
        with self._idle_lock:
            smtp, at = self._idle.pop(threading.get_ident(), (None, 0.0))
        if smtp is not None:
            try:
                if time.monotonic() - at <= KEEP_S and smtp.noop()[0] == 250:
                    return smtp
            except (OSError, smtplib.SMTPException):
                pass
            _close(smtp, quit_first=True)
        return self._connect()

    def _complete(self, message: EmailMessage) -> None:
        """Give ``message`` the From:, Date: and Message-ID: it lacks."""
        if "From" not in message:
            message["From"] = self.settings.sender
        if "Date" not in message:
            message["Date"] = formatdate(localtime=True)
        if "Message-ID" not in message:
            message["Message-ID"] = make_msgid(domain=_domain(self.settings.sender))

    # -- the sending thread ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if isinstance(item, EmailMessage):
                self._busy = True
                self._deliver(item)
                self._busy = False
        dropped = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            dropped += isinstance(item, EmailMessage)
        if dropped:
            self.failed += dropped
            log.warning("%d e-mail(s) not sent: the hub is stopping", dropped)

    def _deliver(self, message: EmailMessage) -> None:
        """Try ``message`` until it is accepted, given up, or the mailer stops."""
        pauses = iter(self.backoff_s)
        while True:
            try:
                self._transmit(message)
            except (OSError, smtplib.SMTPException) as exc:
                pause = next(pauses, None)
                what = f"e-mail {message['Subject']!r} to {message['To']}"
                where = f"{self.settings.host}:{self.settings.port}"
                if pause is None or self._stop.is_set():
                    self.failed += 1
                    log.error("%s given up: the SMTP server %s: %s", what, where, _reason(exc))
                    return
                log.warning(
                    "%s not sent, tried again in %g s: the SMTP server %s: %s",
                    what,
                    pause,
                    where,
                    _reason(exc),
                )
                if self._stop.wait(pause):
                    self.failed += 1
                    log.error("%s given up: the hub is stopping", what)
                    return
                continue
            except Exception:
                # No server can take it (it cannot be encoded, say): trying again is no use.
                self.failed += 1
                log.exception("e-mail %r to %s cannot be sent", message["Subject"], message["To"])
                return
            self.sent += 1
            log.info("e-mail %r sent to %s", message["Subject"], message["To"])
            return

    def _tls(self) -> ssl.SSLContext:
        """The TLS settings for the SMTP server, made once (loading the CAs is slow)."""
        with self._tls_lock:
            if self._context is None:
                self._context = ssl.create_default_context(cafile=self.settings.ca_file)
            return self._context

    def _transmit(self, message: EmailMessage) -> None:
        """One attempt: connect, TLS, log in, send, quit."""
        with self._connect() as smtp:
            smtp.send_message(message)

    def _connect(self) -> smtplib.SMTP:
        """A connection to the SMTP server, with TLS and logged in as ``[mail]`` says."""
        config = self.settings
        assert config.host is not None
        smtp: smtplib.SMTP
        if config.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=self._tls()
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        try:
            if config.starttls and not config.implicit_tls:
                smtp.starttls(context=self._tls())
            if config.username is not None and config.password is not None:
                smtp.login(config.username, config.password.get_secret_value())
        except BaseException:
            _close(smtp)
            raise
        return smtp


def _close(smtp: smtplib.SMTP, *, quit_first: bool = False) -> None:
    """Close ``smtp``, saying QUIT first if ``quit_first``; a dead connection is no error."""
    if quit_first:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()
    with contextlib.suppress(OSError):
        smtp.close()


def _domain(address: str | None) -> str | None:
    return address.rpartition("@")[2] if address else None


def _reason(exc: BaseException) -> str:
    """A failure in one line, without the password (smtplib never puts it there)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        error: bytes | str = exc.smtp_error
        text = error.decode("utf-8", "replace") if isinstance(error, bytes) else error
        return f"{exc.smtp_code} {text}".strip()
    return str(exc) or type(exc).__name__
