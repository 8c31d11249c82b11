"""A model's throughput, smoothed over batches, and the Retry-After it gives a full line."""

from __future__ import annotations

import math
import threading

__all__ = ["Rate"]


class Rate:
    """Items per second over finished batches (exponentially smoothed); thread-safe.

    Before the first batch the rate is taken as `batch_size` items a second.
    """

    def __init__(self, *, batch_size: int) -> None:
        self._first_guess = float(batch_size)
        self._lock = threading.Lock()
        self._per_second = 0.0

    @property
    def per_second(self) -> float:
        """The smoothed rate; 0.0 before the first batch."""
        return self._per_second

    def observe(self, items: int, seconds: float) -> None:
        """A batch of `items` took `seconds` from being taken to being answered."""
        rate = items / max(seconds, 1e-6)
        with self._lock:
            old = self._per_second
            self._per_second = rate if not old else 0.8 * old + 0.2 * rate

    def retry_after(self, depth: int) -> int:
        """Seconds to work off `depth` items at the current rate, between 1 and 60."""
        rate = self._per_second or self._first_guess
        return max(1, min(60, math.ceil(depth / rate)))
