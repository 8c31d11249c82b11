"""A model's health from the progress of its queued work: ok, stalled, or dead."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Watchdog"]


class Watchdog:
    """When queued work last made progress, on an injectable clock.

    `stalled` (not ready) once work is pending and nothing progressed for `stall_seconds`;
    `dead` (not alive) once that lasts `dead_factor` times as long. An idle model is never
    stalled. Lock-free: its owner (the Feed) beats it under the queue's lock.
    """

    def __init__(
        self, *, stall_seconds: float, dead_factor: int, clock: Callable[[], float]
    ) -> None:
        self.stall_seconds = stall_seconds
        self.dead_factor = dead_factor
        self._clock = clock
        self._progress_at = clock()

    def beat(self) -> None:
        """Progress now: a request reached an idle model, or a batch finished or failed."""
        self._progress_at = self._clock()

    def health(self, *, pending: bool) -> str:
        """'ok', 'stalled' or 'dead'; `pending`: work is queued or in hand. Raises nothing."""
        idle_for = self._clock() - self._progress_at if pending else 0.0
        if idle_for > self.stall_seconds * self.dead_factor:
            return "dead"
        return "stalled" if idle_for > self.stall_seconds else "ok"
