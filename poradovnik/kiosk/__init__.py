"""The kiosk role: a touchscreen that issues printed tickets."""

import os

# pygame greets on stdout when imported; a kiosk's log has no use for it.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
