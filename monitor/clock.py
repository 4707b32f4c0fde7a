"""Time, behind a small interface so tests can drive it with a fake clock."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time for timestamps, a monotonic clock for durations and schedules."""

    def now(self) -> float:
        """UTC wall-clock time, seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``monotonic()`` reaches ``deadline``."""
        ...


class SystemClock:
    """The real clocks."""

    def now(self) -> float:
        """UTC wall-clock time, seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until the monotonic deadline (returns at once if it has passed)."""
        delay = deadline - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
