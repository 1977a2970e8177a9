"""The sounds of a call: a chime made in code, and speech from espeak-ng or recorded words.

Everything is 16-bit mono PCM at :data:`RATE` (espeak-ng's own rate), held as a
:class:`Clip`. The chime needs no sound file: :func:`chime` sums a few decaying sine
partials of two notes, a soft "ding-dong". :class:`Speaker` turns a sentence into
speech: with espeak-ng (offline, Debian's ``espeak-ng``), or by joining recorded words
(``<words_dir>/<lang>/<word>.wav``), falling back to espeak-ng for each run of words
that has no recording.
"""

from __future__ import annotations

import io
import logging
import math
import re
import shutil
import subprocess
import sys
import wave
from array import array
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from common.errors import PoradovnikError

__all__ = ["RATE", "Clip", "Speaker", "SpeechError", "chime"]

log = logging.getLogger(__name__)

RATE = 22050
"""Samples per second of every clip (espeak-ng speaks at this rate)."""

_SAMPLE_BYTES = 2
_ESPEAK_TIMEOUT_S = 10.0
_WORD_GAP_S = 0.06
"""Silence between joined recorded words."""


@dataclass(frozen=True, slots=True)
class Clip:
    """A piece of sound: 16-bit signed little-endian mono samples at :data:`RATE`."""

    frames: bytes

    @property
    def samples(self) -> int:
        """How many samples the clip has."""
        return len(self.frames) // _SAMPLE_BYTES

    @property
    def duration_s(self) -> float:
        """How long the clip plays, in seconds."""
        return self.samples / RATE

    @classmethod
    def silence(cls, seconds: float) -> Clip:
        """A silent clip of ``seconds``."""
        return cls(bytes(round(seconds * RATE) * _SAMPLE_BYTES))

    @classmethod
    def join(cls, clips: list[Clip]) -> Clip:
        """The clips one after another."""
        return cls(b"".join(clip.frames for clip in clips))

    @classmethod
    def from_wav(cls, data: bytes, origin: str) -> Clip:
        """Read a WAV file's bytes; raise :class:`SpeechError` unless 16-bit mono at RATE.

        A WAV streamed by ``espeak-ng --stdout`` has no length in its header; all
        frames up to the end are read.
        """
        try:
            with wave.open(io.BytesIO(data), "rb") as wav:
                shape = (wav.getnchannels(), wav.getsampwidth(), wav.getframerate())
                frames = wav.readframes(sys.maxsize)
        except (wave.Error, EOFError) as exc:
            raise SpeechError(f"{origin}: not a readable WAV file: {exc}") from None
        if shape != (1, _SAMPLE_BYTES, RATE):
            channels, width, rate = shape
            raise SpeechError(
                f"{origin}: {channels} channel(s), {8 * width}-bit, {rate} Hz; the display "
                f"needs mono 16-bit {RATE} Hz (sox in.wav -r {RATE} -c 1 -b 16 out.wav)"
            )
        return cls(frames[: len(frames) - len(frames) % _SAMPLE_BYTES])

    def scaled(self, volume: float) -> Clip:
        """The clip at ``volume`` (0.0 silent, 1.0 as it is)."""
        if volume >= 1.0:
            return self
        samples = array("h", self.frames)
        if sys.byteorder == "big":
            samples.byteswap()
        scaled = array("h", (int(s * volume) for s in samples))
        if sys.byteorder == "big":
            scaled.byteswap()
        return Clip(scaled.tobytes())

    def wav(self) -> bytes:
        """The clip as the bytes of a WAV file."""
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(_SAMPLE_BYTES)
            wav.setframerate(RATE)
            wav.writeframes(self.frames)
        return out.getvalue()


class SpeechError(Exception):
    """Speech could not be made (espeak-ng failed, a recording is unusable)."""


# A soft two-note chime: E5 then C5, each with a few harmonics that fade.
_NOTES = ((0.0, 659.25), (0.42, 523.25))
"""(start in seconds, fundamental in Hz) of each note."""
_PARTIALS = ((1.0, 1.0), (2.0, 0.35), (3.0, 0.12), (4.2, 0.05))
"""(multiple of the fundamental, relative amplitude) of each partial; 4.2 gives a bell's
slightly inharmonic shimmer."""
_DECAY_S = 0.38
"""Time constant of each note's exponential fade."""
_NOTE_S = 1.3
"""How long each note rings before it is cut (it is faint by then)."""
_ATTACK_S = 0.006
"""A short fade-in, so a note starts without a click."""
_PEAK = 0.5
"""The loudest a sample gets, as a share of full scale, so speech stays louder."""


@cache
def chime() -> Clip:
    """The chime played before each announcement (made once, then kept)."""
    length = round((_NOTES[-1][0] + _NOTE_S) * RATE)
    mix = [0.0] * length
    norm = sum(amplitude for _, amplitude in _PARTIALS)
    for start_s, fundamental in _NOTES:
        start = round(start_s * RATE)
        for n in range(round(_NOTE_S * RATE)):
            t = n / RATE
            envelope = math.exp(-t / _DECAY_S) * min(1.0, t / _ATTACK_S)
            value = sum(
                amplitude * math.sin(2 * math.pi * fundamental * multiple * t)
                for multiple, amplitude in _PARTIALS
            )
            mix[start + n] += envelope * value / norm
    # The notes overlap; scale the sum so that its loudest sample is at _PEAK.
    top = max(abs(v) for v in mix) or 1.0
    scale = _PEAK * 32767 / top
    samples = array("h", (round(v * scale) for v in mix))
    if sys.byteorder == "big":
        samples.byteswap()
    return Clip(samples.tobytes())


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


class Speaker:
    """Speaks sentences in one language: espeak-ng, or recorded words where there are.

    ``voice`` is the espeak-ng voice and ``rate`` its words per minute. With
    ``words_dir``, each word of a sentence (lowercased, numbers as digits: ``42``) is
    looked up as ``<words_dir>/<word>.wav``; each run of words without a recording is
    spoken by espeak-ng. Raises :class:`PoradovnikError` at construction if espeak-ng
    is not installed.
    """

    def __init__(
        self,
        voice: str,
        *,
        rate: int = 140,
        words_dir: Path | None = None,
        espeak: str = "espeak-ng",
    ) -> None:
        found = shutil.which(espeak)
        if found is None:
            raise PoradovnikError(
                f"{espeak} is not installed; the display speaks with it "
                "(Debian: apt install espeak-ng), or set [display] speech = false"
            )
        self.espeak = found
        self.voice = voice
        self.rate = rate
        self.words_dir = words_dir
        self._words: dict[str, Clip | None] = {}

    def say(self, sentence: str) -> Clip:
        """The spoken ``sentence``; raises :class:`SpeechError` if espeak-ng fails."""
        if self.words_dir is None:
            return self.espeak_clip(sentence)
        tokens = _TOKEN.findall(sentence)
        parts: list[Clip] = []
        missing: list[str] = []
        for token in tokens:
            recorded = self._recorded(token.lower())
            if recorded is None:
                missing.append(token)
                continue
            if missing:
                parts.append(self.espeak_clip(" ".join(missing)))
                missing = []
            parts.append(recorded)
        if missing:
            parts.append(self.espeak_clip(" ".join(missing)))
        gap = Clip.silence(_WORD_GAP_S)
        joined: list[Clip] = []
        for part in parts:
            joined += [part, gap]
        return Clip.join(joined[:-1])

    def _recorded(self, word: str) -> Clip | None:
        """A recorded word, or ``None`` (and espeak-ng speaks it)."""
        if word in self._words:
            return self._words[word]
        assert self.words_dir is not None
        path = self.words_dir / f"{word}.wav"
        clip: Clip | None = None
        try:
            clip = Clip.from_wav(path.read_bytes(), str(path))
        except FileNotFoundError:
            pass
        except (OSError, SpeechError) as exc:
            log.warning("recorded word unusable, espeak-ng speaks it instead: %s", exc)
        self._words[word] = clip
        return clip

    def espeak_clip(self, text: str) -> Clip:
        """``text`` spoken by espeak-ng."""
        command = [self.espeak, "-v", self.voice, "-s", str(self.rate), "--stdout", text]
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=_ESPEAK_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpeechError(f"espeak-ng could not speak {text!r}: {exc}") from None
        if done.returncode != 0 or not done.stdout:
            problem = done.stderr.decode(errors="replace").strip() or f"status {done.returncode}"
            raise SpeechError(f"espeak-ng ({self.voice}) could not speak {text!r}: {problem}")
        return Clip.from_wav(done.stdout, "espeak-ng's output")
