"""The MQTT link between the devices and the hub."""
