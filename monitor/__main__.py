"""``python -m monitor`` is ``sla-monitor``."""

from monitor.cli.main import main

# Guarded: the report's chart workers (multiprocessing "spawn") import the main module.
if __name__ == "__main__":
    raise SystemExit(main())
