"""Helpers of the display tests: a display on the test broker, and reading its screenshots."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygame
import serial

from common.display_settings import DisplaySettings
from common.settings import DataSettings, DeviceSettings, Settings, SiteSettings
from display.app import Display, build
from display.boards.emulator import EmulatedBoards
from display.screen import CallScreen
from lobby.content import Scene

WAIT_S = 10.0


def display_settings(mqtt: Any, site: str, data_dir: Path, **display: Any) -> Settings:
    """Settings of display ``d1`` on the test broker, headless, with sound into WAV files."""
    values: dict[str, Any] = {
        "video_driver": "dummy",
        "width": 1280,
        "height": 720,
        "fullscreen": False,
        "sound": "wav",
        "sound_dir": data_dir / "sound",
        "language_cycle_s": 0,
    }
    values.update(display)
    return Settings(
        role="display",
        site=SiteSettings(id=site, languages=("sk", "en")),
        mqtt=mqtt,
        device=DeviceSettings(id="d1"),
        data=DataSettings(dir=data_dir),
        display=DisplaySettings(**values),
    )


@dataclass
class Frame:
    """A frame the display drew: its scene and a copy of the whole screen."""

    scene: Scene
    shot: pygame.Surface


@dataclass
class RunningDisplay:
    """A display running its main loop in a thread, with every frame it draws."""

    display: Display
    frames: queue.Queue[Frame] = field(default_factory=queue.Queue)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def wait_for(self, wanted: Callable[[Scene], bool]) -> Frame:
        """The first frame (from now on) whose scene is ``wanted``."""
        while True:
            frame = self.frames.get(timeout=WAIT_S)
            if wanted(frame.scene):
                return frame

    def close(self) -> None:
        self.stop.set()
        self.display.wake()
        if self.thread is not None:
            self.thread.join(timeout=WAIT_S)
            assert not self.thread.is_alive(), "the display did not stop"


def start_display(settings: Settings) -> RunningDisplay:
    """Build the display from ``settings`` and run it in a thread, keeping its frames."""
    frames: queue.Queue[Frame] = queue.Queue()

    def keep(scene: Scene, _changed: list[pygame.Rect]) -> None:
        frames.put(Frame(scene, running.display.screen.surface.copy()))

    running = RunningDisplay(build(settings, on_frame=keep), frames)
    running.thread = threading.Thread(
        target=running.display.run, args=(running.stop,), name="display", daemon=True
    )
    running.thread.start()
    return running


def ink(
    surface: pygame.Surface, area: pygame.Rect, background: tuple[int, int, int]
) -> pygame.Rect:
    """The smallest rectangle of ``area`` holding every pixel not of ``background``."""
    mask = pygame.mask.from_threshold(surface.subsurface(area), background, (1, 1, 1, 255))
    mask.invert()
    rects = mask.get_bounding_rects()
    assert rects, f"nothing is drawn in {area}"
    return rects[0].unionall(rects[1:]).move(area.topleft)


def shows(screen: CallScreen, shot: pygame.Surface, box: str, text: str, *, lit: bool) -> bool:
    """Whether the screenshot shows exactly ``text`` in the screen's ``box`` (pixel for pixel).

    ``text`` is rendered as the screen renders it, in the font that fits the box; its
    inked pixels must equal those of the screenshot's box.
    """
    area = screen.boxes[box]
    color = shot.get_at(area.topleft)
    background = (color.r, color.g, color.b)
    theme = screen.theme
    assert background == (theme.accent if lit else theme.panel)
    font = screen.fonts.fit(text, area.width, area.height, bold=True)
    rendered = screen.render(text, font, theme.on_accent if lit else theme.text, background)
    expected = rendered.convert(shot)  # the same pixel format as the screenshot
    want = ink(expected, expected.get_rect(), background)
    got = ink(shot, area, background)
    return want.size == got.size and pygame.image.tobytes(
        expected.subsurface(want), "RGB"
    ) == pygame.image.tobytes(shot.subsurface(got), "RGB")


@contextmanager
def answering(boards: EmulatedBoards, device: str) -> Iterator[EmulatedBoards]:
    """``boards`` answering on the serial ``device`` (9600 baud) in a thread until the
    block ends."""
    stop = threading.Event()
    with serial.Serial(device, 9600, timeout=0.05) as port:
        thread = threading.Thread(target=boards.serve, args=(port, stop), daemon=True)
        thread.start()
        yield boards
        stop.set()
        thread.join(timeout=WAIT_S)
