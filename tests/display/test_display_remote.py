"""A remote ticket's call on the lobby's call screen: the content model keeps the hub's
``remote`` and the screen draws the number with its mark ▲, small, at its top right."""

from __future__ import annotations

import pygame
from display_helpers import ink
from test_display_appointment import call, scene_of, screen, ticket_ink

from display.screen import CallScreen
from lobby.content import APPOINTMENT_MARK, REMOTE_MARK
from sync_agent.protocol import Call

__all__ = ["screen"]  # the fixture, shared with the appointment's tests


def remote(ticket: str) -> Call:
    return call(ticket, appointment=False).model_copy(update={"remote": True})


def test_the_content_model_keeps_the_remote_mark() -> None:
    scene = scene_of(remote("A001"), call("A002", appointment=True))
    assert scene.current is not None
    assert scene.current.marks == (("appointment", APPOINTMENT_MARK),)
    [old] = scene.history
    assert (old.mark, old.marks) == (REMOTE_MARK, (("remote", REMOTE_MARK),))


def test_the_call_screen_marks_a_remote_ticket(screen: CallScreen) -> None:
    main = screen.boxes["ticket"]
    plain = ticket_ink(screen, scene_of(call("A042", appointment=False)), main)
    marked = ticket_ink(screen, scene_of(remote("A042")), main)
    assert marked.right > marked.left + plain.width * 0.8
    mark_area = pygame.Rect(marked.right - 2, marked.top, 2, marked.height)
    mark = ink(screen.surface, mark_area, screen.theme.panel)
    assert mark.bottom < marked.top + marked.height * 0.6  # the mark stays in the top part
    assert mark.height < marked.height / 2
