"""pygame for the roles with a screen (kiosk, lobby display), imported lean and quiet.

pygame looks up its bundled data through setuptools' ``pkg_resources`` when that is
installed, which costs a screen role about 12 MB of memory for nothing: the roles
draw with the DejaVu fonts, not with pygame's bundled data, and pygame falls back to
plain file paths without it. Importing pygame from here keeps ``pkg_resources`` out of
the process and pygame's greeting out of the journal.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
if "pkg_resources" not in sys.modules:
    # A None entry makes `import pkg_resources` raise ImportError in this process.
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]

import pygame

__all__ = ["pygame"]
