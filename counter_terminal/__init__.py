"""The counter role: the clerk's button panel with status lights."""
