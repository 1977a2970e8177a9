"""The display role: the lobby call screen, chime, announcements and LED boards."""
