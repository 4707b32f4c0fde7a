"""The scheduler alone, on a fast fake clock: every probe at its interval without drift,
a probe that raises or overruns is recorded as a failure, a slow probe never delays
another, and stopping waits for the runs in flight."""

from __future__ import annotations

import asyncio
import itertools

from monitor.results import Result
from monitor.scheduler import Job, Scheduler
from probes.base import Observation, Outcome
from tests.fakes import FakeClock


class FakeProbe:
    """Answers after ``delay_s`` virtual seconds (or raises)."""

    def __init__(
        self, clock: FakeClock, delay_s: float = 0.0, raises: bool = False, hangs: bool = False
    ) -> None:
        self.clock = clock
        self.delay_s = delay_s
        self.raises = raises
        self.hangs = hangs
        self.calls = 0

    async def observe(self) -> Observation:
        self.calls += 1
        if self.raises:
            raise RuntimeError("bug in a probe")
        if self.hangs:
            await asyncio.Event().wait()  # never answers, never times out by itself
        await self.clock.sleep_until(self.clock.monotonic() + self.delay_s)
        return Observation(self.delay_s, Outcome.OK)

    async def aclose(self) -> None:
        return None


async def _run_for(scheduler: Scheduler, clock: FakeClock, virtual_s: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    end = clock.monotonic() + virtual_s
    while clock.monotonic() < end:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 10)


def _drain(queue: asyncio.Queue[Result]) -> list[Result]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def test_probes_run_at_their_interval_and_a_slow_one_delays_no_other() -> None:
    # 50x: the 1.5 s tolerance is 30 ms of real time, so a busy machine (another test
    # run beside this one) does not fail it; 200x left 7.5 ms, and it did.
    clock = FakeClock(speed=50.0)
    fast = FakeProbe(clock)
    slow = FakeProbe(clock, delay_s=25.0)  # longer than its own interval
    queue: asyncio.Queue[Result] = asyncio.Queue(10_000)
    jobs = [
        Job("svc", "fast", "http", 10.0, 5.0, fast),
        Job("svc", "slow", "http", 10.0, 30.0, slow),
    ]
    await _run_for(Scheduler(jobs, queue, clock, max_concurrency=100), clock, 200.0)
    results = _drain(queue)
    by_probe = {name: [r for r in results if r.probe == name] for name in ("fast", "slow")}
    # 200 s at a 10 s interval: 20 runs each (give or take the first phase and the stop).
    assert 19 <= len(by_probe["fast"]) <= 21
    assert 18 <= len(by_probe["slow"]) <= 21  # runs overlap instead of queueing up
    starts = sorted(r.started_at for r in by_probe["fast"])
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(abs(gap - 10.0) < 1.5 for gap in gaps), gaps  # anchored: no drift


async def test_a_probe_that_raises_or_overruns_is_a_failure_not_a_crash() -> None:
    # The overrun guard (timeout + 1 s) is real time: a probe must not hang the daemon.
    clock = FakeClock(speed=40.0)
    queue: asyncio.Queue[Result] = asyncio.Queue(10_000)
    jobs = [
        Job("svc", "buggy", "http", 10.0, 5.0, FakeProbe(clock, raises=True)),
        Job("svc", "stuck", "http", 10.0, 0.5, FakeProbe(clock, hangs=True)),
    ]
    await _run_for(Scheduler(jobs, queue, clock, max_concurrency=100), clock, 120.0)
    results = _drain(queue)
    buggy = [r for r in results if r.probe == "buggy"]
    stuck = [r for r in results if r.probe == "stuck"]
    assert buggy
    assert all(r.outcome is Outcome.ERROR for r in buggy)
    assert "RuntimeError" in buggy[0].detail
    assert stuck
    assert all(r.outcome is Outcome.TIMEOUT for r in stuck)
