"""The chime before each announcement, made in code: no sound file needed.

:func:`chime` sums a few decaying sine partials of two notes, a soft "ding-dong", as
a :class:`~common.speech.Clip` at :data:`~common.speech.RATE`. The speech after it
comes from :mod:`common.speech`.
"""

from __future__ import annotations

import math
import sys
from array import array
from functools import cache

from common.speech import RATE, Clip

__all__ = ["chime"]


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
