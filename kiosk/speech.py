"""Spoken confirmation through espeak-ng, for citizens who cannot read the screen."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

__all__ = ["Speaker"]

log = logging.getLogger(__name__)

VOICES = {"sk": "sk", "cs": "cs", "uk": "uk", "en": "en"}
"""espeak-ng's voice for each language of the kiosk."""


class Speaker:
    """Says short texts with espeak-ng, in the background; a missing espeak-ng is logged once."""

    def __init__(self, command: str = "espeak-ng", *, rate: int = 140) -> None:
        self.command = shutil.which(command)
        self.rate = rate
        self._process: subprocess.Popen[bytes] | None = None
        if self.command is None:
            log.warning("%s is not installed: the kiosk will not speak", command)

    def say(
        self, text: str, lang: str, *, wav: Path | None = None
    ) -> subprocess.Popen[bytes] | None:
        """Start saying ``text`` in ``lang`` (cutting off what is still being said).

        With ``wav`` the speech is written to that file instead of the speakers.
        Returns the espeak-ng process, or ``None`` when there is no espeak-ng.
        """
        if self.command is None:
            return None
        self.stop()
        args = [self.command, "-v", VOICES.get(lang, "en"), "-s", str(self.rate)]
        if wav is not None:
            args += ["-w", str(wav)]
        try:
            self._process = subprocess.Popen(
                [*args, "--", text], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        except OSError as exc:
            log.warning("espeak-ng could not start: %s", exc)
            return None
        return self._process

    def stop(self) -> None:
        """Stop speaking."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=5)
