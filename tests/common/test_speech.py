"""Speech through espeak-ng, the one speaker of the kiosk and the lobby display: how it
fails. espeak-ng missing or without the voice is one clear error when the speaker is
made, and the role goes on silent; a run of espeak-ng that fails or hangs is stopped at
its timeout, raised by ``say`` and logged by ``speak``, never a crash and never a hang."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import pytest
from display_helpers import display_settings

from common.errors import PoradovnikError
from common.settings import MqttSettings
from common.speech import Speaker, SpeechError
from display.app import _announcer
from kiosk.app import _speakers

WAIT_S = 10.0


class Heard(logging.Handler):
    """Sets :attr:`seen` when ``common.speech`` logs a message holding ``wanted``."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted = wanted
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.wanted in message:
            self.seen.set()


@pytest.fixture
def heard() -> object:
    handlers: list[Heard] = []
    speech = logging.getLogger("common.speech")

    def listen(wanted: str) -> Heard:
        handler = Heard(wanted)
        speech.addHandler(handler)
        handlers.append(handler)
        return handler

    yield listen
    for handler in handlers:
        speech.removeHandler(handler)


def espeak_that(tmp_path: Path, then: str) -> str:
    """An espeak-ng that answers the speaker's check of its voice (the word "a"), then
    does ``then`` for every sentence: the faults of a real espeak-ng, on demand."""
    script = tmp_path / "espeak-ng"
    lines = ["#!/bin/sh", "for last; do :; done", '[ "$last" = a ] && exec espeak-ng "$@"', then]
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return str(script)


def test_a_missing_espeak_or_voice_is_one_clear_error() -> None:
    with pytest.raises(PoradovnikError, match="apt install espeak-ng"):
        Speaker("sk", espeak="espeak-ng-not-here")
    with pytest.raises(PoradovnikError, match=r"voice 'xx-none'.*does not exist"):
        Speaker("xx-none")


def test_a_hung_espeak_is_stopped_at_its_timeout(tmp_path: Path, heard) -> None:
    speaker = Speaker("sk", espeak=espeak_that(tmp_path, "exec sleep 600"), timeout_s=0.5)
    with pytest.raises(SpeechError, match="timed out"):
        speaker.say("Lístok A 42, okienko 3")
    log = heard("to say 'Lístok A 42': stopped")
    process = speaker.speak("Lístok A 42")
    assert process is not None
    assert process.wait(timeout=WAIT_S) == -signal.SIGKILL
    assert log.seen.wait(WAIT_S), log.messages


def test_a_failing_voice_is_raised_by_say_and_logged_by_speak(tmp_path: Path, heard) -> None:
    broken = espeak_that(tmp_path, 'echo "Error: the voice broke" >&2; exit 1')
    speaker = Speaker("sk", espeak=broken)
    with pytest.raises(SpeechError, match="the voice broke"):
        speaker.say("Lístok A 42")
    log = heard("could not say 'Lístok A 42': Error: the voice broke")
    process = speaker.speak("Lístok A 42")
    assert process is not None
    assert process.wait(timeout=WAIT_S) == 1
    assert log.seen.wait(WAIT_S), log.messages


def test_stop_cuts_speech_off_at_once(tmp_path: Path) -> None:
    speaker = Speaker("sk", espeak=espeak_that(tmp_path, "exec sleep 600"))
    process = speaker.speak("Lístok A 42")
    assert process is not None
    speaker.stop()
    assert process.wait(timeout=WAIT_S) == -signal.SIGTERM


def test_roles_without_espeak_go_on_silent_and_say_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on it
    assert _speakers(("sk", "en")) == {}
    settings = display_settings(MqttSettings(), "office", tmp_path)
    announcer = _announcer(settings)
    assert announcer is not None
    assert announcer.speakers == {}
    assert announcer.speech_problem is not None
    assert "apt install espeak-ng" in announcer.speech_problem
    assert "the kiosk will not speak sk ([kiosk] speech)" in caplog.text
    assert "the display will not speak en ([display] speech)" in caplog.text
