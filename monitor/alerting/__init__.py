"""Alerting: rule evaluation and alert lifecycle (``engine``), and the notifiers with their
retrying dispatcher (``notifiers``)."""
