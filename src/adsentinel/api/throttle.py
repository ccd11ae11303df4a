"""What one server process lets in: failed authentications per client, and the chart queue.

* **Failed authentication** (a bad API token on ``/api/v1``, a bad token at the dashboard login):
  past ``ADSENTINEL_AUTH_FAILURE_LIMIT`` failures of one client (its address as uvicorn sees it;
  run uvicorn with ``--proxy-headers`` behind a proxy) within
  ``ADSENTINEL_AUTH_FAILURE_WINDOW_SECONDS``, every request of that client needing a token is
  answered 429 with ``Retry-After`` until the oldest failure leaves the window; a valid token does
  not get through meanwhile, so guessing cannot go on.
* **Charts** are CPU-bound and computed one at a time per process (:mod:`adsentinel.api.series`).
  At most ``ADSENTINEL_CHART_QUEUE_LIMIT`` chart requests wait for their turn; past that a request
  is answered 429 with ``Retry-After`` at once instead of holding a server thread (45 waiting
  charts used to hold every thread, and ``/health`` took 5 s).

The counts live in the process: with ``serve --workers N`` each process counts its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI, HTTPException, Request, status

from adsentinel.config import Settings

#: clients remembered by a failure throttle; the least recently failing are forgotten first
MAX_TRACKED_CLIENTS = 10_000
_STATE_LOCK = threading.Lock()
THROTTLED_MESSAGE = "too many failed authentications from this address; try again later"


class TooManyRequests(HTTPException):
    """HTTP 429 with ``Retry-After`` (whole seconds, at least 1)."""

    def __init__(self, detail: str, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(status.HTTP_429_TOO_MANY_REQUESTS, detail,
                         headers={"Retry-After": str(self.retry_after)})


@dataclass
class FailureThrottle:
    """Failures per client in a sliding window; a client at ``limit`` waits (``limit`` 0: never)."""

    limit: int
    window_seconds: float
    clock: Callable[[], float] = time.monotonic
    _failures: OrderedDict[str, deque[float]] = field(init=False, default_factory=OrderedDict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def retry_after(self, client: str) -> float | None:
        """Seconds ``client`` must wait before trying again, or ``None`` when it may try now."""
        if self.limit <= 0:
            return None
        with self._lock:
            recent = self._recent(client)
            if recent is None or len(recent) < self.limit:
                return None
            return recent[0] + self.window_seconds - self.clock()

    def record_failure(self, client: str) -> None:
        """Count one failed authentication of ``client``."""
        if self.limit <= 0:
            return
        with self._lock:
            recent = self._recent(client)
            if recent is None:
                recent = self._failures[client] = deque(maxlen=self.limit)
            recent.append(self.clock())
            self._failures.move_to_end(client)
            while len(self._failures) > MAX_TRACKED_CLIENTS:
                self._failures.popitem(last=False)

    def _recent(self, client: str) -> deque[float] | None:
        """The failures of ``client`` still in the window (older ones dropped)."""
        recent = self._failures.get(client)
        if recent is None:
            return None
        horizon = self.clock() - self.window_seconds
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            del self._failures[client]
            return None
        return recent


@dataclass
class ChartQueue:
    """Chart requests in one process: at most ``waiting_limit`` wait while one is computed."""

    waiting_limit: int
    clock: Callable[[], float] = time.monotonic
    _inside: int = field(init=False, default=0)
    _seconds_per_chart: float = field(init=False, default=1.0)  # moving average
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold a place in the queue for the body; :class:`TooManyRequests` when it is full."""
        with self._lock:
            if self._inside > self.waiting_limit:  # one computing, waiting_limit waiting
                raise TooManyRequests(
                    f"{self._inside} charts are already being computed or waiting in this "
                    "server process; try again shortly",
                    retry_after=self._inside * self._seconds_per_chart)
            ahead = self._inside
            self._inside += 1
        started = self.clock()
        try:
            yield
        finally:
            # it waited for the ``ahead`` before it, then computed: one chart's cost is about
            # its time inside shared by all of them
            per_chart = (self.clock() - started) / (ahead + 1)
            with self._lock:
                self._inside -= 1
                self._seconds_per_chart = 0.8 * self._seconds_per_chart + 0.2 * per_chart

    @property
    def inside(self) -> int:
        """Chart requests computing or waiting now."""
        return self._inside


def client_of(request: Request) -> str:
    """The client's address as the server sees it."""
    return request.client.host if request.client else "unknown"


def auth_throttle(app: FastAPI) -> FailureThrottle:
    """The failed-authentication throttle of ``app`` (one per app, made on first use)."""
    return _app_state(app, "auth_throttle", lambda s: FailureThrottle(
        s.auth_failure_limit, float(s.auth_failure_window_seconds)))


def chart_queue(app: FastAPI) -> ChartQueue:
    """The chart queue of ``app`` (one per app, made on first use)."""
    return _app_state(app, "chart_queue", lambda s: ChartQueue(s.chart_queue_limit))


def refuse_throttled_client(request: Request) -> None:
    """:class:`TooManyRequests` when this client failed authentication too often lately."""
    wait = auth_throttle(request.app).retry_after(client_of(request))
    if wait is not None:
        raise TooManyRequests(THROTTLED_MESSAGE, retry_after=wait)


def record_failed_authentication(request: Request) -> None:
    """Count a bad token (or login) of this request's client."""
    auth_throttle(request.app).record_failure(client_of(request))


def _app_state(app: FastAPI, name: str, build: Callable[[Settings], object]):
    found = getattr(app.state, name, None)
    if found is None:
        with _STATE_LOCK:
            found = getattr(app.state, name, None)
            if found is None:
                found = build(app.state.settings)
                setattr(app.state, name, found)
    return found


__all__ = ["ChartQueue", "FailureThrottle", "TooManyRequests", "auth_throttle", "chart_queue",
           "client_of", "record_failed_authentication", "refuse_throttled_client"]
