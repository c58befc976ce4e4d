"""An in-process token-bucket rate limiter, one bucket per caller.

Each caller (a user by its token's subject, an API key by its prefix, else the client
address) has a bucket of ``burst`` tokens refilled at ``rate`` tokens a second; a request
takes one, and is refused with 429 and ``Retry-After`` (seconds until a token is back)
when the bucket is empty. Buckets live in this process only: with several server
processes each enforces its own share.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucketLimiter"]


class TokenBucketLimiter:
    """Token buckets keyed by caller.

    Parameters
    ----------
    rate : float
        Refill rate. [tokens/s]
    burst : int
        Bucket size. [tokens]
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0 if allowed, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
