"""Speech from espeak-ng, the one way every role speaks: the kiosk and the lobby display.

A :class:`Speaker` speaks one espeak-ng voice (offline, Debian's ``espeak-ng``) in two
ways: :meth:`Speaker.say` makes a sentence's sound as a :class:`Clip` (16-bit mono PCM
at :data:`RATE`) for the display to play after its chime, joining recorded words where
there are (``<words_dir>/<word>.wav``); :meth:`Speaker.speak` says a sentence aloud at
once, in the background, through espeak-ng's own sound output or, with a ``device``,
through that ALSA device (``aplay -D``: a headphone jack or a loudspeaker; the kiosk).

How speech fails, the same on every role:

- espeak-ng missing, or without the voice: :class:`PoradovnikError` when the speaker is
  made, one line saying what to install; the role logs it and goes on without that
  language's speech (the display also reports it as its health part ``speech``).
- Every run of espeak-ng is bounded by ``timeout_s``: one that fails or takes longer is
  stopped; :meth:`Speaker.say` raises :class:`SpeechError`, :meth:`Speaker.speak` logs
  it. Speech never stops a role, and never holds it up.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import sys
import threading
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

from common.errors import PoradovnikError

__all__ = ["RATE", "Clip", "Speaker", "SpeechError"]

log = logging.getLogger(__name__)

RATE = 22050
"""Samples per second of every clip (espeak-ng speaks at this rate)."""

_SAMPLE_BYTES = 2
ESPEAK_TIMEOUT_S = 10.0
"""The longest one run of espeak-ng may take (a sentence takes well under a second)."""
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


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


class Speaker:
    """Speaks sentences in one espeak-ng voice; see the module for how it fails.

    ``voice`` is the espeak-ng voice and ``rate`` its words per minute. With
    ``words_dir``, :meth:`say` looks each word of a sentence (lowercased, numbers as
    digits: ``42``) up as ``<words_dir>/<word>.wav``; each run of words without a
    recording is spoken by espeak-ng. With ``device`` (an ALSA device name such as
    ``plughw:CARD=Headphones``), :meth:`speak` plays through that device by piping
    espeak-ng's sound to ``aplay``. Raises :class:`PoradovnikError` if espeak-ng (or, with
    a device, aplay) is not installed or has no such voice.
    """

    def __init__(
        self,
        voice: str,
        *,
        rate: int = 140,
        words_dir: Path | None = None,
        espeak: str = "espeak-ng",
        timeout_s: float = ESPEAK_TIMEOUT_S,
        device: str | None = None,
    ) -> None:
        found = shutil.which(espeak)
        if found is None:
            raise PoradovnikError(
                f"{espeak} is not installed; speech needs it "
                "(Debian: apt install espeak-ng), or switch speech off in the role's settings"
            )
        self.espeak = found
        self.aplay: str | None = None
        if device:
            self.aplay = shutil.which("aplay")
            if self.aplay is None:
                raise PoradovnikError(
                    f"aplay is not installed; speech through the device {device!r} needs it "
                    "(Debian: apt install alsa-utils)"
                )
        self.device = device or None
        self.voice = voice
        self.rate = rate
        self.words_dir = words_dir
        self.timeout_s = timeout_s
        self._words: dict[str, Clip | None] = {}
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._cut: set[int] = set()
        """The processes :meth:`stop` cut off (by pid): their end is no failure."""
        try:
            self.espeak_clip("a")
        except SpeechError as exc:
            raise PoradovnikError(f"espeak-ng cannot speak the voice {voice!r}: {exc}") from None

    def _command(self, *options: str) -> list[str]:
        return [self.espeak, "-v", self.voice, "-s", str(self.rate), *options]

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
        try:
            done = subprocess.run(
                self._command("--stdout", "--", text),
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpeechError(f"espeak-ng could not speak {text!r}: {exc}") from None
        if done.returncode != 0 or not done.stdout:
            problem = done.stderr.decode(errors="replace").strip() or f"status {done.returncode}"
            raise SpeechError(f"espeak-ng ({self.voice}) could not speak {text!r}: {problem}")
        return Clip.from_wav(done.stdout, "espeak-ng's output")

    def speak(self, sentence: str, *, wav: Path | None = None) -> subprocess.Popen[bytes] | None:
        """Start saying ``sentence`` aloud, cutting off what is still being said.

        Returns at once, with the process whose end is the end of the speech (espeak-ng,
        or aplay with a ``device``; ``None`` if it could not start). With ``wav`` the
        speech is written to that file instead. A run that fails is logged; one that
        outlasts ``timeout_s`` is killed and logged.
        """
        self.stop()
        processes: list[subprocess.Popen[bytes]] = []
        try:
            if wav is not None or self.aplay is None:
                options = ("-w", str(wav)) if wav is not None else ()
                processes.append(self._start(self._command(*options, "--", sentence)))
            else:
                espeak = self._start(self._command("--stdout", "--", sentence), piped=True)
                processes.append(espeak)
                assert espeak.stdout is not None
                play = [self.aplay, "-q", "-D", str(self.device)]
                processes.append(self._start(play, source=espeak))
                espeak.stdout.close()  # aplay alone reads it: espeak-ng sees aplay's end
        except OSError as exc:
            log.error("speech (%s) could not start: %s", self.voice, exc)
            for process in processes:
                process.kill()
            return None
        with self._lock:
            self._processes = processes
        for process in processes:
            watch = threading.Thread(
                target=self._watch, args=(process, sentence), name="speech", daemon=True
            )
            watch.start()
        return processes[-1]

    @staticmethod
    def _start(
        command: list[str],
        *,
        piped: bool = False,
        source: subprocess.Popen[bytes] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start one process of :meth:`speak`: output piped onward or dropped."""
        return subprocess.Popen(
            command,
            stdin=source.stdout if source is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if piped else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _watch(self, process: subprocess.Popen[bytes], sentence: str) -> None:
        """Wait for one run of :meth:`speak`: log a failure, kill it after ``timeout_s``."""
        try:
            _, errors = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            log.error(
                "%s (%s) took over %s s to say %r: stopped",
                Path(process.args[0]).name,  # type: ignore[index,arg-type]
                self.voice,
                self.timeout_s,
                sentence,
            )
            return
        with self._lock:
            cut = process.pid in self._cut
            self._cut.discard(process.pid)
        # A negative status is a signal: stop() cut the sentence off (aplay exits 1).
        if process.returncode > 0 and not cut:
            problem = errors.decode(errors="replace").strip() or f"status {process.returncode}"
            program = Path(process.args[0]).name  # type: ignore[index,arg-type]
            log.error("%s (%s) could not say %r: %s", program, self.voice, sentence, problem)

    def stop(self) -> None:
        """Cut off what :meth:`speak` is saying; returns at once."""
        with self._lock:
            processes, self._processes = self._processes, []
            self._cut.update(process.pid for process in processes if process.poll() is None)
        for process in reversed(processes):  # aplay first: no complaint of a cut-off input
            if process.poll() is None:
                process.terminate()
