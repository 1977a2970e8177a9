"""The display's sound: the chime, espeak-ng speech, recorded words, volume and quiet hours,
written as WAV files and read back with the wave module and sox."""

from __future__ import annotations

import math
import queue
import subprocess
import threading
import wave
from array import array
from datetime import datetime, time
from pathlib import Path

import pytest

from common.display_settings import parse_quiet_hours
from common.speech import RATE, Clip, Speaker
from display.announcer import PAUSE_S, Announcement, Announcer, WavPlayer, in_quiet_hours
from display.sound import chime
from lobby.catalog import catalog
from lobby.content import ShownCall

WAIT_S = 10.0
CALL = ShownCall("A042", "t1", "3", "Okienko 3", "taxes", recall=False)


def samples(clip: Clip) -> array[int]:
    return array("h", clip.frames)


def rms(values: array[int]) -> float:
    return math.sqrt(sum(v * v for v in values) / max(len(values), 1))


def espeak(voice: str, text: str, tmp_path: Path) -> Clip:
    """``text`` spoken by espeak-ng into a file, read with the wave module."""
    path = tmp_path / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "-w", str(path), text], check=True)
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, RATE)
        return Clip(wav.readframes(wav.getnframes()))


def test_the_chime_rings_and_fades() -> None:
    clip = chime()
    values = samples(clip)
    assert 1.5 < clip.duration_s < 2.0
    assert max(abs(v) for v in values) == pytest.approx(0.5 * 32767, rel=0.01)
    quarter = len(values) // 4
    assert rms(values[:quarter]) > 10 * rms(values[-quarter // 4 :])  # it fades out
    assert values[0] == 0  # no click at the start


def test_the_texts_of_each_language() -> None:
    texts = [
        catalog(lang).announcement("A042", "3", recall=False) for lang in ("sk", "cs", "uk", "en")
    ]
    assert texts == [
        "Lístok A 42, okienko 3",
        "Lístek A 42, přepážka 3",
        "Квиток А 42, віконце 3",
        "Ticket A42, counter 3",
    ]
    assert catalog("sk").announcement("B007", "5", recall=True).startswith("Opakujeme")


def announcer(
    tmp_path: Path, langs: tuple[str, ...], **kwargs: object
) -> tuple[Announcer, queue.Queue[Announcement]]:
    done: queue.Queue[Announcement] = queue.Queue()
    catalogs = [catalog(lang) for lang in langs]
    speakers = {c.lang: Speaker(c.voice, rate=140) for c in catalogs}
    made = Announcer(
        player=WavPlayer(tmp_path / "out"),
        catalogs=catalogs,
        speakers=speakers,
        on_done=done.put,
        **kwargs,  # type: ignore[arg-type]
    )
    made.start()
    return made, done


def test_an_announcement_is_chime_then_each_language(tmp_path: Path) -> None:
    speaking, done = announcer(tmp_path, ("sk", "uk"), volume=1.0)
    try:
        speaking.announce(CALL)
        announcement = done.get(timeout=WAIT_S)
    finally:
        speaking.stop()
    sk = espeak("sk", "Lístok A 42, okienko 3", tmp_path)
    uk = espeak("uk", "Квиток А 42, віконце 3", tmp_path)
    pause = Clip.silence(PAUSE_S)
    expected = chime().samples + pause.samples + sk.samples + pause.samples + uk.samples
    [path] = sorted((tmp_path / "out").glob("*.wav"))
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == RATE
        assert wav.getnframes() == expected
        frames = wav.readframes(wav.getnframes())
    assert frames == announcement.clip.frames
    speech = array("h", frames)[chime().samples + pause.samples :]
    assert rms(speech) > 500  # not silent
    # sox agrees on the length.
    length = subprocess.run(["soxi", "-s", str(path)], capture_output=True, text=True, check=True)
    assert int(length.stdout) == expected


def test_announcements_queue_and_never_overlap(tmp_path: Path) -> None:
    speaking, done = announcer(tmp_path, ("en",))
    playing = threading.Lock()
    overlaps: list[str] = []
    original = speaking.player.play

    def play(clip: Clip, stop: threading.Event) -> None:
        if not playing.acquire(blocking=False):
            overlaps.append("overlap")
            return
        try:
            original(clip, stop)
        finally:
            playing.release()

    speaking.player.play = play  # type: ignore[method-assign]
    try:
        for n in range(3):
            speaking.announce(
                ShownCall(f"B00{n}", f"t{n}", "2", "Okienko 2", "waste", recall=False)
            )
        tickets = [done.get(timeout=WAIT_S).call.ticket for _ in range(3)]
    finally:
        speaking.stop()
    assert tickets == ["B000", "B001", "B002"]
    assert overlaps == []
    assert len(list((tmp_path / "out").glob("*.wav"))) == 3


def test_volume_and_quiet_hours(tmp_path: Path) -> None:
    quiet = parse_quiet_hours(("12:00-12:30", "22:00-06:00"))
    assert in_quiet_hours(time(12, 10), quiet)
    assert in_quiet_hours(time(23, 0), quiet)
    assert in_quiet_hours(time(5, 59), quiet)
    assert not in_quiet_hours(time(12, 30), quiet)
    assert not in_quiet_hours(time(9, 0), quiet)
    with pytest.raises(ValueError, match="12:60"):
        parse_quiet_hours(("12:00-12:60",))
    made = Announcer(
        player=WavPlayer(tmp_path),
        catalogs=[],
        speakers={},
        volume=0.8,
        quiet_hours=quiet,
        quiet_volume=0.2,
    )
    assert made.current_volume(datetime(2026, 3, 2, 12, 5)) == 0.2
    assert made.current_volume(datetime(2026, 3, 2, 9, 0)) == 0.8
    loud = made.compose(CALL, 1.0).clip
    soft = made.compose(CALL, 0.2).clip
    assert loud.samples == soft.samples
    assert rms(samples(soft)) == pytest.approx(0.2 * rms(samples(loud)), rel=0.01)


def tone(path: Path, seconds: float, *, rate: int = RATE) -> None:
    values = array(
        "h",
        (int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))),
    )
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(values.tobytes())


def test_recorded_words_are_joined_and_espeak_speaks_the_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    words = tmp_path / "sk"
    words.mkdir()
    tone(words / "lístok.wav", 0.4)
    tone(words / "42.wav", 0.3)
    tone(words / "okienko.wav", 0.2, rate=44100)  # the wrong rate: espeak-ng speaks it
    speaker = Speaker("sk", rate=140, words_dir=words)
    spoken = speaker.say("Lístok A 42, okienko 3")
    gap = Clip.silence(0.06).samples
    a = espeak("sk", "A", tmp_path).samples
    rest = espeak("sk", "okienko 3", tmp_path).samples
    assert spoken.samples == round(0.4 * RATE) + gap + a + gap + round(0.3 * RATE) + gap + rest
    assert "44100 Hz" in caplog.text


def test_without_espeak_the_error_says_what_to_install() -> None:
    from common.errors import PoradovnikError

    with pytest.raises(PoradovnikError, match="apt install espeak-ng"):
        Speaker("sk", espeak="espeak-ng-not-here")
