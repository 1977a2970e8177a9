"""The display role: the lobby call screen, chime, announcements and LED boards."""

import os

# pygame greets on stdout when imported; a service's journal has no use for it.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
