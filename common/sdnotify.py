"""Tell systemd how a service is doing: ready, alive (watchdog), status, stopping.

This is the ``sd_notify`` protocol: datagrams of ``KEY=value`` lines sent to the
``AF_UNIX`` socket named by ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract
namespace). Outside systemd the variable is unset and every call does nothing, so code can
notify unconditionally. A failed send is logged once and never raised: a service must not
die because its supervisor did not listen.

A unit using it has ``Type=notify`` and, for the watchdog, ``WatchdogSec=``; the service
then calls :meth:`Notifier.watchdog` every :func:`watchdog_interval` seconds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping
from types import TracebackType

__all__ = ["Notifier", "watchdog_interval"]

_log = logging.getLogger(__name__)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings: half of ``$WATCHDOG_USEC``; ``None`` if no watchdog.

    Like ``sd_watchdog_enabled``, a ``$WATCHDOG_PID`` naming another process means the
    watchdog is not for this one.
    """
    environ = os.environ if env is None else env
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID", "")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2_000_000


class Notifier:
    """Sends ``sd_notify`` messages to ``$NOTIFY_SOCKET``; a no-op when it is unset.

    Use one per process; it is safe to share between threads. Each method returns whether
    the message was sent.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = dict(os.environ if env is None else env)
        self._address = self._parse_address(self._env.get("NOTIFY_SOCKET", ""))
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._failed = False

    @staticmethod
    def _parse_address(value: str) -> str | None:
        if value.startswith("@"):
            return "\0" + value[1:]
        if value.startswith("/"):
            return value
        if value:
            _log.warning("NOTIFY_SOCKET=%r is not a socket path; not notifying systemd", value)
        return None

    @property
    def enabled(self) -> bool:
        """Whether there is a systemd socket to notify."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` *assignments* in one datagram, as ``sd_notify`` does."""
        if self._address is None or not assignments:
            return False
        message = "\n".join(assignments).encode()
        try:
            with self._lock:
                if self._socket is None:
                    self._socket = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._socket.sendto(message, self._address)
        except OSError as exc:
            if not self._failed:
                _log.warning("cannot notify systemd at %s: %s", self._env["NOTIFY_SOCKET"], exc)
                self._failed = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Say the service has started (``READY=1``), optionally with a status line."""
        if status is None:
            return self.notify("READY=1")
        return self.notify("READY=1", _status(status))

    def watchdog(self) -> bool:
        """Say the service is still alive (``WATCHDOG=1``)."""
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """Set the one-line status ``systemctl status`` shows (``STATUS=...``)."""
        return self.notify(_status(text))

    def stopping(self) -> bool:
        """Say the service is shutting down (``STOPPING=1``)."""
        return self.notify("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings for this process; see :func:`watchdog_interval`."""
        return watchdog_interval(self._env)

    def close(self) -> None:
        """Close the socket; a later message opens it again."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _status(text: str) -> str:
    return "STATUS=" + " ".join(text.split())
