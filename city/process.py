"""The city's consumer in a process of its own, started and watched by ``poradovnik city``.

The consumer (:mod:`city.consumer`) writes every branch's history while the city's web
pages answer citizens; in one process both would share one interpreter lock, and the
pages' threads would delay the commits of every branch's rows. ``poradovnik city``
therefore runs the consumer in a child process (:class:`ConsumerProcess`, started with
``multiprocessing``'s *spawn*: a fresh interpreter, nothing inherited but the
settings), and keeps the web pages and the branches' live state
(:class:`~city.live.LiveFeed`) in its own.

One pipe joins them:

- the child sends, every :data:`~common.liveness.BEAT_S`, how long the most silent of
  its loops (the consumer's thread, its MQTT network thread) has gone without progress;
  the parent's :attr:`ConsumerProcess.heartbeat` takes it, and the parent's watchdog
  watches that heartbeat with its own loops, so systemd restarts the service when the
  child hangs;
- the parent asks for a resync or the catalogue (:class:`~city.services.Publisher`), and
  to stop.

The child ignores SIGINT and SIGTERM (systemd sends the service's stop to every process
of it): it stops when the parent asks, or when the pipe closes because the parent is
gone. A child that ends on its own is started again after a capped backoff, and
resyncs at start (every ack, the catalogue), so nothing asked of it meanwhile is lost.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from multiprocessing.connection import Connection
from typing import Final

from common.liveness import BEAT_S, Heartbeat
from common.settings import Settings
from sync_agent.backoff import Backoff

__all__ = ["ConsumerProcess", "consumer_main"]

log = logging.getLogger(__name__)

RESYNC: Final = "resync"
CATALOGUE: Final = "catalogue"
STOP: Final = "stop"

STOP_TIMEOUT_S: Final = 15.0
"""How long a stopping child may take (its consumer ends its threads) before it is killed."""


class ConsumerProcess:
    """The consumer's child process (see the module's docstring); :meth:`start`, :meth:`stop`.

    It is the city's :class:`~city.services.Publisher`: :meth:`resync` and
    :meth:`publish_catalogue` are passed on to the child.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.heartbeat = Heartbeat("city consumer process")
        """Beaten as the child reports its loops' progress (set back by their silence)."""
        self.started = threading.Event()
        """Set once a child reported for the first time (tests wait for it)."""
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._pipe: Connection | None = None
        self._child: multiprocessing.process.BaseProcess | None = None
        self._stop = threading.Event()
        self._backoff = Backoff(base_s=1.0, cap_s=30.0)
        self._thread = threading.Thread(target=self._supervise, name="city-consumer-process")

    def start(self) -> ConsumerProcess:
        """Start the child, and the thread that watches it and starts it again if it ends."""
        self.heartbeat.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the child to stop and wait for it (killed after :data:`STOP_TIMEOUT_S`)."""
        self._stop.set()
        self._send(STOP)
        self._thread.join(STOP_TIMEOUT_S + 5)

    @property
    def pid(self) -> int | None:
        """The child's process id (``None`` before the first is started)."""
        child = self._child
        return child.pid if child is not None else None

    def resync(self) -> None:
        """Ask the child to publish every ack and the catalogue again (any thread)."""
        self._send(RESYNC)

    def publish_catalogue(self) -> None:
        """Ask the child to publish the stored catalogue (any thread)."""
        self._send(CATALOGUE)

    def _send(self, word: str) -> None:
        # No child (it is being started again): it resyncs at start anyway.
        with self._lock:
            if self._pipe is None:
                return
            try:
                self._pipe.send(word)
            except (OSError, ValueError):
                log.debug("the consumer process did not take %r: it is gone", word)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self._run_child()
            except Exception:  # the supervisor must outlive any surprise
                log.exception("running the city's consumer process failed")
            if self._stop.is_set():
                return
            delay = self._backoff.next_delay()
            child = self._child
            log.error(
                "the city's consumer process ended (exit status %s); starting it again in %.0f s",
                child.exitcode if child is not None else None,
                delay,
            )
            self._stop.wait(delay)

    def _run_child(self) -> None:
        """Start one child and serve it until it ends (killed if it will not stop)."""
        ours, theirs = self._context.Pipe()
        try:
            child = self._context.Process(
                target=consumer_main,
                args=(self.settings, theirs),
                name="poradovnik-city-consumer",
            )
            child.start()
            self._child = child
            theirs.close()
            with self._lock:
                self._pipe = ours
            if self._stop.is_set():  # asked to stop while it started: the word was missed
                self._send(STOP)
            self._listen(ours)
            child.join(STOP_TIMEOUT_S if self._stop.is_set() else BEAT_S)
            if child.is_alive():
                log.warning("the city's consumer process did not stop in time: killing it")
                child.kill()
                child.join()
        finally:
            with self._lock:
                self._pipe = None
            ours.close()
            theirs.close()

    def _listen(self, pipe: Connection) -> None:
        """Take the child's reports until it closes the pipe (it ended)."""
        while True:
            try:
                silence = pipe.recv()
            except (EOFError, OSError):
                return
            self.heartbeat.beat(ago=float(silence))
            if not self.started.is_set():
                self.started.set()
                self._backoff.reset()


def consumer_main(settings: Settings, pipe: Connection) -> None:
    """The child process: run the consumer until the parent says stop or is gone."""
    from city.consumer import CityConsumer  # noqa: PLC0415 (in the child only)
    from city.store import CityStore  # noqa: PLC0415
    from common.logging import setup_logging  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    setup_logging(settings.logging.level)
    url = settings.city.database_url
    assert url is not None, "the parent opened the database first"
    store = CityStore(url)
    consumer = CityConsumer(settings.city, store, None)
    loops = [consumer.heartbeat, consumer.connection.heartbeat]
    consumer.start()
    try:
        while True:
            pipe.send(max(loop.silent_for() for loop in loops))
            if not pipe.poll(BEAT_S):
                continue
            word = pipe.recv()
            if word == STOP:
                return
            if word == RESYNC:
                consumer.resync()
            elif word == CATALOGUE:
                consumer.publish_catalogue()
    except (EOFError, OSError):
        log.warning("the city's main process is gone: the consumer stops")
    finally:
        consumer.stop()
        store.close()
        pipe.close()
