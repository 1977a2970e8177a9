"""Fixtures of the counter panel's tests: none of their own yet beyond the shared ones
(broker, hub, devices, programs); a panel's settings are in ``counter_helpers``, which
the watchdog's tests share."""
