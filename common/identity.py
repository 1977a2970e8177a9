"""Names every role agrees on without asking the hub.

The hub is a device of its site like the others: it has a device id, under which it
publishes its status and its broker account is made. Devices watch that status to
tell whether the hub is up, so the id is fixed, defined here once.
"""

HUB_DEVICE_ID = "hub"
"""The hub's own device id: its status is ``device/hub/status``, its broker account ``hub``,
and the tickets it issues itself have it as their origin."""
