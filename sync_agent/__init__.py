"""The MQTT link between the devices and the hub, and a new device's pairing with the hub."""
