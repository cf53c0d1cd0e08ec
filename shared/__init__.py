"""Code both Vesper processes import: config, topics, event model, store, MQTT client."""
