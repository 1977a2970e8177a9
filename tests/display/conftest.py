"""Fixtures of the lobby display's tests (with the shared broker, hub and devices)."""

from __future__ import annotations

import pytest


@pytest.fixture
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    """SDL without a screen or a sound card: the display draws into memory."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
