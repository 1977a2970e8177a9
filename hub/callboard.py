"""The hub's own lobby display content: what the web display page shows, call by call.

The lobby TVs get calls over MQTT and keep a :class:`~lobby.content.Lobby`
each. The hub's web display page (``/display``) shows the same content, so the hub
keeps :class:`Lobby` objects too, in a :class:`CallBoard` fed by a queue-service
listener: calls that come together take turns there, each current for at least
``min_show_s``, exactly as on the TVs, however many browsers have the page open and
whenever they fetch it. A timer makes the next waiting call current when its turn
comes and tells the live pages (``on_turn``); no thread runs while no call waits.

One lobby shows every counter; a page that shows only some counters
(``/display?counters=1,2``) gets a lobby of its own, made on first use from the
recent calls (at most ``max_views`` such lobbies, the least recently used dropped).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Final

from hub.engine import Engine
from hub.messages import calls_of, queue_state
from hub.model import Change
from hub.service import QueueService
from lobby.content import Lobby, Scene
from sync_agent.protocol import Call, QueueState

__all__ = ["CallBoard", "Counters"]

Counters = frozenset[str] | None
"""The counters a view shows; ``None`` for all of them."""

_PAST_S: Final = 3600.0
"""A lobby made later replays the recent calls as if shown this long ago (no blinking)."""


class CallBoard:
    """Lobbies fed by the queue (its :meth:`changed` is a queue listener), read as scenes.

    ``history``, ``highlight_s`` and ``min_show_s`` are those of
    :class:`~lobby.content.Lobby`; ``on_turn`` is called (from the timer's
    thread, without the board's lock) when a waiting call became current; ``clock`` is
    monotonic seconds.
    """

    def __init__(
        self,
        queue: QueueService,
        *,
        history: int = 5,
        highlight_s: float = 4.0,
        min_show_s: float = 6.0,
        on_turn: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        max_views: int = 16,
    ) -> None:
        self.queue = queue
        self.history = history
        self.highlight_s = highlight_s
        self.min_show_s = min_show_s
        self.on_turn = on_turn
        self.clock = clock
        self.max_views = max_views
        self._lock = threading.Lock()
        self._lobbies: OrderedDict[Counters, Lobby] = OrderedDict()
        self._lobbies[None] = self._new_lobby()
        self._recent: deque[Call] = deque(maxlen=history + 1)
        self._timer: threading.Timer | None = None
        self._timer_at = 0.0

    def _new_lobby(self) -> Lobby:
        lobby = Lobby(
            history=self.history, highlight_s=self.highlight_s, min_show_s=self.min_show_s
        )
        lobby.set_connected(True)  # the hub hears itself
        return lobby

    # -- input -----------------------------------------------------------------------

    def changed(self, change: Change) -> None:
        """A queue listener: the calls a change made join every lobby that shows them."""
        calls = calls_of(change, self.queue.engine)
        if not calls:
            return
        with self._lock:
            now = self.clock()
            self._recent.extend(calls)
            for counters, lobby in self._lobbies.items():
                for call in calls:
                    if counters is None or call.counter in counters:
                        lobby.call(call)
                lobby.advance(now)
            self._schedule(now)

    # -- output ----------------------------------------------------------------------

    def scene(self, counters: Counters = None) -> Scene:
        """What the lobby of ``counters`` shows now, with each service's queue as of now."""
        states = self.queue.read(lambda engine: _states(engine, counters, self.queue))
        with self._lock:
            now = self.clock()
            lobby = self._lobby(counters, now)
            lobby.services = {}
            for state in states:
                lobby.queue(state)
            lobby.advance(now)
            return lobby.scene(now)

    def is_new(self, scene: Scene) -> bool:
        """Whether the scene's current call became current less than ``highlight_s`` ago."""
        current = scene.current
        return current is not None and self.clock() - current.shown_at < self.highlight_s

    def _lobby(self, counters: Counters, now: float) -> Lobby:
        """The lobby of ``counters`` (under the lock), made from the recent calls if new."""
        lobby = self._lobbies.get(counters)
        if lobby is not None:
            self._lobbies.move_to_end(counters)
            return lobby
        lobby = self._new_lobby()
        assert counters is not None
        past = now - _PAST_S
        for call in self._recent:
            if call.counter in counters:
                lobby.call(call)
                lobby.advance(past)
                past += self.min_show_s + 1.0
        self._lobbies[counters] = lobby
        while len(self._lobbies) > self.max_views + 1:
            oldest = next(key for key in self._lobbies if key is not None)
            del self._lobbies[oldest]
        return lobby

    # -- turns -----------------------------------------------------------------------

    def _schedule(self, now: float) -> None:
        """Start the timer for the next waiting call's turn (under the lock), if any."""
        turns = [
            lobby.current.shown_at + lobby.min_show_s
            for lobby in self._lobbies.values()
            if lobby.pending and lobby.current is not None
        ]
        if not turns:
            return
        at = min(turns)
        if self._timer is not None and self._timer.is_alive() and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = threading.Timer(max(0.0, at - now), self.turn)
        self._timer.name = "poradovnik-callboard"
        self._timer.daemon = True
        self._timer.start()

    def turn(self) -> bool:
        """Let waiting calls whose turn came become current; return whether any did."""
        with self._lock:
            now = self.clock()
            turned = any([bool(lobby.advance(now)) for lobby in self._lobbies.values()])
            self._timer = None
            self._schedule(now)
        if turned:
            self.on_turn()
        return turned

    def close(self) -> None:
        """Stop the timer (the hub is stopping)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


def _states(engine: Engine, counters: Counters, queue: QueueService) -> Iterable[QueueState]:
    """The queue states of the services that ``counters`` serve (all for ``None``)."""
    if counters is None:
        codes = list(engine.services)
    else:
        served = {s for c in counters if c in engine.counters for s in engine.counters[c].services}
        codes = [code for code in engine.services if code in served]
    now = queue.clock()
    return [queue_state(engine, code, now) for code in codes]
