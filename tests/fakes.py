"""Fakes for what is fine to fake: the clock."""

from __future__ import annotations

import asyncio


class FakeClock:
    """A clock that moves only when told to (or, with ``speed``, ``speed`` times faster
    than real time, so a test can live through minutes in seconds)."""

    def __init__(self, start: float = 1_795_000_000.0, speed: float | None = None) -> None:
        self._wall = start
        self._mono = 0.0
        self.speed = speed
        self._loop_start: float | None = None

    def _elapsed(self) -> float:
        if self.speed is None:
            return 0.0
        loop_time = asyncio.get_running_loop().time()
        if self._loop_start is None:
            self._loop_start = loop_time
        return (loop_time - self._loop_start) * self.speed

    def now(self) -> float:
        """Fake UTC epoch seconds."""
        return self._wall + self._elapsed()

    def monotonic(self) -> float:
        """Fake monotonic seconds."""
        return self._mono + self._elapsed()

    def set_speed(self, speed: float) -> None:
        """Go on at ``speed`` from the time reached now (no jump)."""
        elapsed = self._elapsed()
        self._wall += elapsed
        self._mono += elapsed
        self._loop_start = asyncio.get_running_loop().time()
        self.speed = speed

    def jump(self, seconds: float) -> None:
        """Step the wall clock alone (a mis-set clock, an NTP step): monotonic time stays."""
        self._wall += seconds

    def advance(self, seconds: float) -> None:
        """Move both clocks forward."""
        self._wall += seconds
        self._mono += seconds

    async def sleep_until(self, deadline: float) -> None:
        """Sleep (scaled by ``speed``) until the fake monotonic clock reaches ``deadline``;
        a manual clock just yields."""
        if self.speed is None:
            await asyncio.sleep(0)
            return
        delay = (deadline - self.monotonic()) / self.speed
        if delay > 0:
            await asyncio.sleep(delay)
