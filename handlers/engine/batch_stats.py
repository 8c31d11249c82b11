"""A model's finished batches, counted for /metrics and /v1/models."""

from __future__ import annotations

import threading

__all__ = ["BatchStats"]


class BatchStats:
    """Inputs and batches computed, failed batches, and finished batches by size;
    thread-safe (every replica's threads count here)."""

    def __init__(self, *, batch_size: int) -> None:
        self._lock = threading.Lock()
        self._counts = {"items": 0, "batches": 0, "failed_batches": 0}
        self._sizes = [0] * (batch_size + 1)

    @property
    def counts(self) -> dict[str, int]:
        """A copy: items, batches, failed_batches."""
        with self._lock:
            return dict(self._counts)

    @property
    def sizes(self) -> list[int]:
        """A copy: finished batches by size (index 0 unused)."""
        with self._lock:
            return list(self._sizes)

    def finished(self, size: int) -> None:
        """A batch of `size` inputs was answered."""
        with self._lock:
            self._counts["items"] += size
            self._counts["batches"] += 1
            self._sizes[size] += 1

    def failed(self) -> None:
        """A batch failed (its requests got an error)."""
        with self._lock:
            self._counts["failed_batches"] += 1
