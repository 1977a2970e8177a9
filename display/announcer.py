"""Announcing calls: one queue, one thread, so announcements never overlap.

:class:`Announcer` makes each call's sound (the chime, then the sentence in each
announced language), sets its loudness (the quiet hours' or the normal volume) and
plays it through a :class:`Player`, one announcement after another. Players, chosen
by ``[display] sound``:

- :class:`PygamePlayer`: SDL's audio through pygame's mixer (HDMI or the jack);
- :class:`AplayPlayer`: ALSA's ``aplay`` (Debian's alsa-utils), with a device of choice;
- :class:`WavPlayer`: writes each announcement as a WAV file (tests, simulated office);
- :class:`NullPlayer`: plays nothing.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from common.display_settings import QuietHours
from common.errors import PoradovnikError
from common.speech import RATE, Clip, Speaker, SpeechError
from display.sound import chime
from lobby.catalog import Catalog
from lobby.content import ShownCall

__all__ = [
    "Announcement",
    "Announcer",
    "AplayPlayer",
    "NullPlayer",
    "Player",
    "PygamePlayer",
    "WavPlayer",
    "in_quiet_hours",
]

log = logging.getLogger(__name__)

PAUSE_S = 0.35
"""Silence after the chime and between the languages."""

BACKLOG_WARNING = 5
"""Announcements waiting beyond this many are logged: calls come faster than spoken."""


class PlayerError(Exception):
    """A player could not play a clip."""


class Player(Protocol):
    """Plays a clip to the end (returns when it has been played, or ``stop`` is set)."""

    def play(self, clip: Clip, stop: threading.Event) -> None:
        """Play ``clip``; raise :class:`PlayerError` if it cannot be played."""

    def close(self) -> None:
        """Release the audio device."""


class NullPlayer:
    """Plays nothing."""

    def play(self, clip: Clip, stop: threading.Event) -> None:
        """Play nothing."""

    def close(self) -> None:
        """Nothing to release."""


class WavPlayer:
    """Writes each clip as ``announcement-<n>.wav`` in ``directory``, keeping the last ``keep``."""

    def __init__(self, directory: Path, *, keep: int = 20) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PoradovnikError(f"cannot create the sound folder {directory}: {exc}") from None
        self.directory = directory
        self.keep = keep
        self.count = 0
        self.written: list[Path] = []

    def play(self, clip: Clip, stop: threading.Event) -> None:
        """Write ``clip`` to the next file."""
        self.count += 1
        path = self.directory / f"announcement-{self.count:05d}.wav"
        try:
            path.write_bytes(clip.wav())
        except OSError as exc:
            raise PlayerError(f"cannot write {path}: {exc}") from None
        self.written.append(path)
        while len(self.written) > self.keep:
            self.written.pop(0).unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release."""


class AplayPlayer:
    """Plays through ALSA's ``aplay``; ``device`` is its ``-D`` (``None``: the default)."""

    def __init__(self, device: str | None = None) -> None:
        found = shutil.which("aplay")
        if found is None:
            raise PoradovnikError(
                "aplay is not installed (Debian: apt install alsa-utils); "
                'or set [display] sound = "pygame"'
            )
        self.command = [found, "-q", *(["-D", device] if device else []), "-"]

    def play(self, clip: Clip, stop: threading.Event) -> None:
        """Pipe ``clip`` into aplay and wait until it has played."""
        try:
            done = subprocess.run(
                self.command,
                input=clip.wav(),
                capture_output=True,
                timeout=clip.duration_s + 10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PlayerError(f"aplay failed: {exc}") from None
        if done.returncode != 0:
            raise PlayerError(f"aplay failed: {done.stderr.decode(errors='replace').strip()}")

    def close(self) -> None:
        """Nothing to release."""


class PygamePlayer:
    """Plays through SDL's audio (pygame's mixer), opened at start."""

    def __init__(self) -> None:
        from common.sdl import pygame  # noqa: PLC0415  (only this player needs SDL's audio)

        self._pygame = pygame
        try:
            pygame.mixer.init(frequency=RATE, size=-16, channels=1, buffer=1024)
        except pygame.error as exc:
            raise PoradovnikError(
                f"cannot open the sound output: {exc}; check the HDMI or jack audio, "
                'or set [display] sound = "aplay" or "none"'
            ) from None

    def play(self, clip: Clip, stop: threading.Event) -> None:
        """Play ``clip`` and wait for its length."""
        try:
            sound = self._pygame.mixer.Sound(buffer=clip.frames)
            channel = sound.play()
        except self._pygame.error as exc:
            raise PlayerError(f"SDL audio failed: {exc}") from None
        stop.wait(sound.get_length())
        if channel is not None and stop.is_set():
            channel.stop()

    def close(self) -> None:
        """Close the mixer."""
        self._pygame.mixer.quit()


def in_quiet_hours(now: time, ranges: QuietHours) -> bool:
    """Whether ``now`` falls into one of the ``(start, end)`` ranges.

    A range whose end comes before its start wraps past midnight.
    """
    for start, end in ranges:
        inside = start <= now < end if start <= end else now >= start or now < end
        if inside:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Announcement:
    """A call as it was announced: its texts, its sound and the volume it played at."""

    call: ShownCall
    texts: tuple[str, ...]
    clip: Clip
    volume: float


class Announcer:
    """Announces calls one after another in its own thread.

    ``catalogs`` are the announced languages, first spoken first; ``speakers`` speak
    them (by language; none: no speech). ``volume`` and ``quiet_volume`` are 0.0-1.0;
    ``quiet_hours`` are ranges of the day in ``timezone``. ``on_done(announcement)`` is
    told of each one played; ``on_health(ok, detail)`` when playing starts or stops
    failing. Both run in the announcer's thread. ``speech_problem`` says why a language
    has no speaker, for the device's health.
    """

    def __init__(
        self,
        *,
        player: Player,
        catalogs: list[Catalog],
        speakers: dict[str, Speaker],
        with_chime: bool = True,
        volume: float = 0.8,
        quiet_hours: QuietHours = (),
        quiet_volume: float = 0.0,
        timezone: ZoneInfo | None = None,
        on_done: Callable[[Announcement], None] | None = None,
        on_health: Callable[[bool, str | None], None] | None = None,
        speech_problem: str | None = None,
    ) -> None:
        self.player = player
        self.catalogs = catalogs
        self.speakers = speakers
        self.with_chime = with_chime
        self.volume = volume
        self.quiet_hours = quiet_hours
        self.quiet_volume = quiet_volume
        self.timezone = timezone
        self.on_done = on_done
        self.on_health = on_health
        self.speech_problem = speech_problem
        """Why a language has no speaker (espeak-ng or its voice missing), for the health."""
        self._queue: queue.Queue[ShownCall | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: bool | None = None

    def announce(self, call: ShownCall) -> None:
        """Queue ``call`` for announcing; returns at once."""
        self._queue.put(call)
        waiting = self._queue.qsize()
        if waiting > BACKLOG_WARNING:
            log.warning("%d announcements wait: calls come faster than they are spoken", waiting)

    def start(self) -> None:
        """Start the announcer's thread."""
        if self._thread is None:
            if self.with_chime:
                chime()  # made once now, not at the first call
            self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the current announcement (cut short); drop those still waiting."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.player.close()

    def current_volume(self, now: datetime | None = None) -> float:
        """The volume at ``now`` (default: the office's present time)."""
        local = now if now is not None else datetime.now(self.timezone)
        if in_quiet_hours(local.time(), self.quiet_hours):
            return self.quiet_volume
        return self.volume

    def compose(self, call: ShownCall, volume: float) -> Announcement:
        """The announcement of ``call``: chime, pause, then each language's sentence."""
        parts: list[Clip] = [chime()] if self.with_chime else []
        texts: list[str] = []
        for catalog in self.catalogs:
            counter = call.counter if call.counter.isdigit() else call.counter_name
            text = catalog.announcement(call.ticket, counter, recall=call.recall)
            speaker = self.speakers.get(catalog.lang)
            if speaker is None:
                continue
            texts.append(text)
            try:
                spoken = speaker.say(text)
            except SpeechError as exc:
                log.error("could not speak the call of %s: %s", call.ticket, exc)
                continue
            parts += [Clip.silence(PAUSE_S), spoken] if parts else [spoken]
        return Announcement(call, tuple(texts), Clip.join(parts).scaled(volume), volume)

    def _run(self) -> None:
        while not self._stop.is_set():
            call = self._queue.get()
            if call is None or self._stop.is_set():
                return
            try:
                self._announce(call)
            except Exception:
                log.exception("announcing %s failed", call.ticket)

    def _announce(self, call: ShownCall) -> None:
        volume = self.current_volume()
        if volume <= 0:
            log.info("quiet hours: %s at %s is shown but not announced", call.ticket, call.counter)
            return
        announcement = self.compose(call, volume)
        try:
            self.player.play(announcement.clip, self._stop)
        except PlayerError as exc:
            log.error("could not play the announcement of %s: %s", call.ticket, exc)
            self._health(ok=False, detail=str(exc)[:200])
            return
        self._health(ok=True, detail=None)
        if self.on_done is not None:
            self.on_done(announcement)

    def _health(self, *, ok: bool, detail: str | None) -> None:
        if self._failing is (not ok):
            return
        self._failing = not ok
        if self.on_health is not None:
            self.on_health(ok, detail)
