"""Fixtures of the role-neutral code's tests (settings, logging, texts, speech,
systemd notification, the pairing screen, the ``poradovnik`` command): none of their
own yet beyond the shared ones."""
