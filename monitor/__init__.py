"""sla-monitor: the daemon (config, scheduler, collector, SLA engine, store, metrics, server)."""

__version__ = "0.1.0"
