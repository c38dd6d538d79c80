"""Sliding-window rate limits for the token endpoint and the login form.

Limits are per gateway process (memory only): with N processes behind a balancer
an attacker gets at most N times the limit, which still turns an online guessing
attack from millions of tries into thousands. Keys are hashed so that client ids,
user names and addresses never sit in memory longer than needed in clear.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

MAX_KEYS: Final = 100_000


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key; ``hit`` says how long to wait."""

    def __init__(
        self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, *parts: str) -> float | None:
        """Count one attempt for the key; None if allowed, else seconds until the next slot."""
        key = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= MAX_KEYS:
                    self._prune(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.0, hits[0] + self.window - now)
            hits.append(now)
            return None

    def _prune(self, now: float) -> None:
        stale = [
            key for key, hits in self._hits.items() if not hits or hits[-1] <= now - self.window
        ]
        for key in stale:
            del self._hits[key]
        if len(self._hits) >= MAX_KEYS:  # still full of live keys: forget the oldest half
            for key in list(self._hits)[: MAX_KEYS // 2]:
                del self._hits[key]
