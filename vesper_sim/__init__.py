"""Local tooling: the fleet simulator and a throwaway Mosquitto for development and tests."""
