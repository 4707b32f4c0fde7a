"""What every command module shares: exit codes and the usage error."""

from __future__ import annotations

from monitor.errors import SlaMonitorError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2  # a bad config or argument: the user must change something


class UsageError(SlaMonitorError):
    """A bad argument that argparse could not catch (it needs the config)."""
