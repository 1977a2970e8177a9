"""The hub: owns the queue (engine and store), its web side and its MQTT bridge."""
