"""Clock sanity: destructive housekeeping (pruning raw results, archiving a month as
closed) acts on wall-clock time, so it runs only while the wall clock keeps pace with the
monotonic clock. A step of the wall clock beyond ``tolerance_s`` (a mis-set clock, an NTP
correction after a long drift, a VM restored from a snapshot) pauses it: logged once,
exported as ``sla_clock_step_seconds``, until the wall clock is back within the tolerance
of where it was or the daemon is restarted by someone who checked the clock.

NTP's slewing moves the offset by at most half a millisecond a second, far inside the
tolerance between two checks; only steps are caught.
"""

from __future__ import annotations

import logging

from monitor.clock import Clock

log = logging.getLogger(__name__)

#: A wall-clock step larger than this between two checks pauses destructive work.
DEFAULT_TOLERANCE_S = 120.0


class ClockWatch:
    """Tracks the wall clock against the monotonic clock of the same ``Clock``."""

    def __init__(self, clock: Clock, tolerance_s: float = DEFAULT_TOLERANCE_S) -> None:
        self.clock = clock
        self.tolerance_s = tolerance_s
        self._offset = clock.now() - clock.monotonic()  # what the wall clock "should" add
        #: The wall clock's unexplained step (0 while it keeps pace).
        self.step_s = 0.0

    def steady(self) -> bool:
        """True while the wall clock agrees with the monotonic clock's progress.

        The offset follows slow drift (it is re-based at every steady check), so only a
        step between two checks counts; after a step, steady again once the wall clock
        returns to within the tolerance of where it was.
        """
        offset = self.clock.now() - self.clock.monotonic()
        step = offset - self._offset
        if abs(step) <= self.tolerance_s:
            if self.step_s:
                log.warning("wall clock back in step: pruning and archiving resume")
            self.step_s = 0.0
            self._offset = offset
            return True
        if step != self.step_s:
            log.error(
                "wall clock stepped by %+.0f s against the monotonic clock: pruning and "
                "archiving paused until it is back or the daemon is restarted",
                step,
            )
        self.step_s = step
        return False


__all__ = ["DEFAULT_TOLERANCE_S", "ClockWatch"]
