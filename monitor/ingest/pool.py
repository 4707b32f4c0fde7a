"""Event bodies read in worker processes, so parsing and checking use another core.

Reading a body (pydantic-core parsing, checking against the config, building results)
was a third of the event loop's time per event at full ingest rate (bench/RESULTS.md);
in a worker it runs beside the loop, which only stores and counts. The workers get the
config's ``ReaderSpec`` once and the daemon's clock reading with every body, so they
check exactly as the loop would. A worker that dies is replaced, and the body it was
reading is read on the loop instead: nothing a sender posted is refused for it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from monitor.config import Config
from monitor.ingest.events import EventReader, Read, ReaderSpec

log = logging.getLogger(__name__)

#: The reader of a worker process, set once when it starts.
_reader: EventReader | None = None
#: How often a worker checks that the daemon that started it is still there.
_WATCH_S = 1.0


def _start_worker(spec: ReaderSpec, daemon: int) -> None:
    global _reader
    # Ctrl-C in a terminal signals the whole process group: the daemon stops its workers
    # itself, in order, so a worker must not die first (the daemon would log it as a crash).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _reader = EventReader(spec)
    # A worker holds its own end of the pipe it reads: a daemon that is SIGKILLed never
    # closes it. Leave once the daemon is gone (this process is then someone else's).
    threading.Thread(target=_exit_with, args=(daemon,), daemon=True).start()


def _exit_with(daemon: int) -> None:
    while os.getppid() == daemon:
        time.sleep(_WATCH_S)
    os._exit(0)


def _read(body: bytes, now: float) -> Read:
    assert _reader is not None, "the worker was started without its spec"
    return _reader.read(body, now)


def _ready() -> bool:
    return _reader is not None


class ReadPool:
    """Worker processes that read event bodies (``ingest.workers`` of them; none: every
    body is read on the loop)."""

    def __init__(self, spec: ReaderSpec, workers: int) -> None:
        self.spec = spec
        self.workers = workers
        self._reader = EventReader(spec)
        self._executor: ProcessPoolExecutor | None = None
        #: Workers that died and were replaced (their body was read on the loop).
        self.restarts = 0

    @classmethod
    def of(cls, config: Config) -> ReadPool:
        """The pool ``ingest.workers`` asks for; no worker when no service takes events."""
        spec = ReaderSpec.of(config)
        return cls(spec, config.ingest.workers if spec.takes_events else 0)

    def _new_executor(self) -> ProcessPoolExecutor:
        # spawn, not fork: the daemon has threads (SQLite's, the pool's own), and a fork
        # copies whatever locks they hold.
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self.spec, os.getpid()),
        )

    async def start(self) -> None:
        """Start the workers and wait until each has its spec (~1 s: imports). Workers
        that cannot start are logged, and bodies are read on the loop instead."""
        if not self.workers:
            return
        executor = self._new_executor()
        loop = asyncio.get_running_loop()
        try:
            await asyncio.gather(
                *(loop.run_in_executor(executor, _ready) for _ in range(self.workers))
            )
        except (OSError, BrokenProcessPool) as exc:
            log.error("ingest workers did not start (%s): bodies are read on the loop", exc)
            executor.shutdown(wait=False, cancel_futures=True)
            return
        self._executor = executor

    async def read(self, body: bytes, now: float) -> Read:
        """The body read by a worker (on the loop when the pool is not running).

        Raises:
            BodyError, TooManyEvents: as ``EventReader.read``.
        """
        if self._executor is None:
            return self._reader.read(body, now)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, _read, body, now
            )
        except BrokenProcessPool:
            self.restarts += 1
            log.error("an ingest worker died: it is replaced; this body is read on the loop")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            return self._reader.read(body, now)

    async def aclose(self) -> None:
        """Stop the workers once they finish what they are reading."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
