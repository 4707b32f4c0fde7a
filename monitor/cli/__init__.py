"""The ``sla-monitor`` command: ``main`` parses and dispatches; one module per command
group (``report``, ``alerts``)."""
