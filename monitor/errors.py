"""The one error root of sla-monitor and its branches."""


class SlaMonitorError(Exception):
    """Base of every error sla-monitor raises on purpose."""


class ConfigError(SlaMonitorError):
    """The configuration is missing or invalid; the message names file, line and key."""


class StoreError(SlaMonitorError):
    """The store could not read or write."""


class NotifierError(SlaMonitorError):
    """A notifier could not deliver an event."""
