"""Notifications: the grouping of events into messages (pure) and their delivery to Apprise channels."""
