"""The process beside each server process that computes its charts.

A chart's expected values and bounds (:func:`adsentinel.api.series.chart_points`) are 50-100 ms
of CPU-bound pandas and numpy that holds the GIL most of the time. Computed in a thread of the
server process, they held the lock that every other request of the process needs at each of its
steps (the event loop, the thread pool, the database driver); on a busy machine the holder is
often off the CPU as well, and the request waits for it to be scheduled again: 8 clients
charting on 2 server processes took ``/health`` from 12 ms to 89 ms p99
(``benchmarks/bench_api.py --phase health``). In a process of its own, a chart competes with
the server's requests only for the CPU, which the kernel shares in slices of a few ms, and
gives to the server's requests first (:data:`CHART_NICENESS`).

One chart process per server process (charts are computed there one at a time, as before:
``series._CHART_SLOTS``), shared by the apps of that process, started with ``spawn`` (a server
process runs threads: forking it could copy a lock another thread holds)
on the first chart, and ended when the server process ends or, if it was killed, when the chart
process sees its parent gone. If it dies (out of memory, killed), the
chart it was computing is retried once in a new one. It imports the computation
(:mod:`adsentinel.api.series`, pandas, scipy) without the application: about 195 MiB resident.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

Result = TypeVar("Result")
#: how often the chart process checks that its server process is still there
PARENT_CHECK_SECONDS = 1.0
#: Added to the chart process's niceness: when the CPU is short (2 cores shared by the server
#: processes, their chart processes, PostgreSQL and the load), the kernel runs a server's waiting
#: request before the next slice of a chart. With 8 clients charting on 2 server processes,
#: ``/health``'s p50 went from 15-20 ms to 5-9 ms. On an idle CPU a chart runs at full speed.
CHART_NICENESS = 10


class ChartProcess:
    """Runs functions in one separate Python process, started on first use."""

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        # ended when this process ends, before multiprocessing joins its children (uvicorn's
        # server processes are multiprocessing children: the executor's own exit hook comes
        # too late there, and they would wait for the chart process for ever), and before the
        # executor's queue closes its feeding thread (priority 10), which would lose the request
        # to stop
        multiprocessing.util.Finalize(self, self.close, exitpriority=100)

    def run(self, function: Callable[..., Result], /, *arguments: Any) -> Result:
        """``function(*arguments)`` in the chart process, waited for; its result or its error.

        The function and the arguments cross by pickle: a module-level function and plain
        values. When the process died meanwhile, a new one is started and the call retried once.
        """
        for attempt in range(2):
            executor = self._current()
            try:
                return executor.submit(function, *arguments).result()
            except BrokenProcessPool:
                self._discard(executor)
                if attempt:
                    raise
        raise AssertionError("unreachable")  # the second attempt returned or raised

    def close(self) -> None:
        """End the process (a later call starts a new one)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_chart_process, initargs=(os.getpid(),))
            return self._executor

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False)


def _start_chart_process(parent: int) -> None:
    """In the chart process: yield the CPU to the server's requests (:data:`CHART_NICENESS`),
    and end once ``parent`` is gone (killed without closing us)."""
    os.nice(CHART_NICENESS)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


_THIS_PROCESS = ChartProcess()


def chart_process() -> ChartProcess:
    """The chart process of this server process."""
    return _THIS_PROCESS


__all__ = ["ChartProcess", "chart_process"]
