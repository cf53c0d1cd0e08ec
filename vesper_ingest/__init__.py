"""The ingest process: device MQTT traffic into current state and classified events."""
