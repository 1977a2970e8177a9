"""Fixtures of the appliance's tests (systemd units, the image's install and storage,
updates, the watchdog, shell scripts): none of their own yet beyond the shared ones;
the card helpers are in ``disk_helpers``."""
