"""Fixtures of the kiosk's tests: none of their own yet beyond the shared ones
(broker, hub, devices, programs); the kiosk and its loopback printer are built by
``kiosk_helpers``, which the watchdog's tests share."""
