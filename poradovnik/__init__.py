"""Poradovník: firmware for a queue-management appliance for city offices."""

from common.version import __version__

__all__ = ["__version__"]
