"""``python -m monitor`` is ``sla-monitor``."""

from monitor.cli import main

raise SystemExit(main())
