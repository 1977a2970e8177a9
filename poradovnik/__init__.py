"""Poradovník: firmware for a queue-management appliance for city offices."""

__version__ = "0.1.0.dev0"
