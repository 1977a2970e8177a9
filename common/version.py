"""The version of the installed Poradovník, as every part reports it.

It is read from the installed distribution's metadata, so ``pyproject.toml`` is the
one place it is written. It lives in :mod:`common` because a device's MQTT link
reports it in the device's status and pairing request, and the command line prints
it; :mod:`poradovnik` re-exports it.
"""

from __future__ import annotations

from importlib.metadata import version

__all__ = ["__version__"]

__version__ = version("poradovnik")
"""The version of the ``poradovnik`` distribution installed in this environment."""
