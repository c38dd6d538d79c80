"""Per-client query limits: how many queries one OAuth client may run at once, and how often.

``ClientLimits.check_rate(client_id)`` is called before a query (or explain) is
governed: it takes one token from the client's bucket (``per_minute`` tokens, refilled
continuously, so a burst of up to ``per_minute`` is allowed after a quiet minute).
``admit(client_id)`` takes one of the client's ``max_concurrent`` slots before a
worker starts; the returned ``release`` gives it back once the result stream has
closed. Refusals raise ``QueryRateLimited`` (HTTP 429) with the seconds to wait in
``retry_after_s``. State is per gateway process; a deployment with N gateway processes
allows N times the figures.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from catalog.errors import QueryRateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float
    running: int = 0


class ClientLimits:
    """Thread-safe token bucket plus concurrency counter per client id."""

    def __init__(
        self,
        *,
        max_concurrent: int,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        if max_concurrent < 1 or per_minute < 1:
            raise ValueError("per-client query limits must be at least 1")
        self.max_concurrent, self.per_minute = max_concurrent, per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._max_clients = max_clients

    def _bucket(self, client_id: str, now: float) -> _Bucket:
        bucket = self._buckets.get(client_id)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._forget_idle(now)
            bucket = self._buckets[client_id] = _Bucket(float(self.per_minute), now)
        rate = self.per_minute / 60.0
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        return bucket

    def _forget_idle(self, now: float) -> None:
        """Drop buckets that are full again and have nothing running (bounded memory)."""
        full_after = 60.0
        for client_id in [
            c for c, b in self._buckets.items() if b.running == 0 and now - b.updated > full_after
        ]:
            del self._buckets[client_id]

    def check_rate(self, client_id: str) -> None:
        """Take one token (explain and run both count); raise when the bucket is empty."""
        with self._lock:
            now = self._clock()
            bucket = self._bucket(client_id, now)
            if bucket.tokens < 1.0:
                wait = math.ceil((1.0 - bucket.tokens) * 60.0 / self.per_minute)
                raise QueryRateLimited(
                    f"client {client_id} sent more than {self.per_minute} queries in a minute; "
                    f"retry in {wait} s or ask an administrator to raise "
                    "query.per_client_per_minute",
                    retry_after_s=wait,
                    limit="per_minute",
                )
            bucket.tokens -= 1.0

    def admit(self, client_id: str) -> Callable[[], None]:
        """Take a running slot (the token was spent by ``check_rate``); call the result once
        the query has finished."""
        with self._lock:
            bucket = self._bucket(client_id, self._clock())
            if bucket.running >= self.max_concurrent:
                raise QueryRateLimited(
                    f"client {client_id} already runs {self.max_concurrent} queries; wait for "
                    "one to finish (read its result to the end or close it) and retry",
                    retry_after_s=1,
                    limit="concurrent",
                )
            bucket.running += 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                bucket.running = max(bucket.running - 1, 0)

        return release

    def running(self, client_id: str) -> int:
        with self._lock:
            bucket = self._buckets.get(client_id)
            return bucket.running if bucket else 0
