"""Fixtures of the MQTT link's tests: none of their own yet beyond the shared ones
(the test office's broker, hub and devices in ``tests/conftest.py``)."""
