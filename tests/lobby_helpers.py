"""Helpers of the lobby's tests (the display's call screen and the hub's /display page):
a hub's call with its marks, and the scene once calls were made."""

from __future__ import annotations

from datetime import UTC, datetime

from lobby.content import Lobby, Scene
from sync_agent.protocol import Call


def lobby_call(ticket: str, *, counter: str = "2", **marks: bool) -> Call:
    """The hub's call of ``ticket`` (service ``taxes``) to ``counter``; ``marks`` sets
    ``appointment``, ``priority`` and ``remote``."""
    return Call(
        ticket=ticket,
        ticket_id=ticket,
        counter=counter,
        counter_name=f"Okienko {counter}",
        service="taxes",
        called_at=datetime.now(UTC),
        recall=False,
        calls=1,
        **marks,
    )


def scene_of(*calls: Call) -> Scene:
    """The scene once ``calls`` were made in turn, the last one current and no longer new."""
    lobby = Lobby(min_show_s=0.0, highlight_s=1.0)
    for n, made in enumerate(calls):
        lobby.call(made)
        lobby.advance(float(n))
    return lobby.scene(100.0)
