"""The one owner of a model's queue: its lock, the BatchQueue, each replica's batch in hand."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handlers.engine.batch_queue import Batch, BatchQueue, Job
from handlers.engine.watchdog import Watchdog
from handlers.errors import ErrorKind, ServiceError

__all__ = ["Feed", "Lane", "Prepared"]


@dataclass(frozen=True, eq=False)
class Prepared:
    """A batch taken from the queue and prepared, waiting for its replica's forward pass."""

    batch: Batch
    features: Any
    tokens: list[int]  # per input, as the runner's prepare stage counted them
    began: float  # when it was taken from the queue, on the scheduler's clock


@dataclass(eq=False)
class Lane:
    """One replica's batch in hand: being prepared, prepared (`slot`), or in its forward
    pass (`busy`). A handle its threads pass to the Feed, which alone reads and writes it,
    under its lock."""

    preparing: bool = False
    slot: Prepared | None = None
    busy: bool = False

    @property
    def holding(self) -> bool:
        """Work taken from the queue and not yet handed back."""
        return self.preparing or self.busy or self.slot is not None


class Feed:
    """Owns one model's BatchQueue and the jobs not yet answered.

    Callers and the batching threads change them only through these methods, each one step
    under the Feed's lock (TEI's queue commands, run in the caller's thread), and the
    threads block on its condition until their step can run: no polling. Progress (a
    request reaching an idle model, a batch finished or failed) beats the watchdog under
    the same lock, so queued work is never seen without its clock running.
    """

    def __init__(self, *, batch_size: int, max_batch_tokens: int, watchdog: Watchdog) -> None:
        self._cond = threading.Condition()
        self._queue = BatchQueue(batch_size=batch_size, max_batch_tokens=max_batch_tokens)
        self._watchdog = watchdog
        self._lanes: list[Lane] = []
        self._jobs: set[Job] = set()  # every job not yet answered, for a dying thread
        self._stopping = False

    # -- the scheduler's side ------------------------------------------------------------

    def lane(self) -> Lane:
        """A new replica's lane."""
        lane = Lane()
        with self._cond:
            self._lanes.append(lane)
        return lane

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def queued(self) -> int:
        """Inputs not yet in a batch."""
        return self._queue.queued

    @property
    def counts(self) -> dict[str, int]:
        """The queue's dropped inputs, tokens and padded tokens (a copy)."""
        return dict(self._queue.counts)

    def pending(self) -> bool:
        """Work queued or in some replica's hands."""
        with self._cond:
            return self._pending()

    def add(self, job: Job) -> None:
        """Queue a request (last in admission order).

        Raises:
            ServiceError: NOT_READY when the scheduler is stopping.
        """
        with self._cond:
            if self._stopping:
                raise ServiceError(ErrorKind.NOT_READY, "The model is stopping.", retry_after=1)
            if not self._pending():
                self._watchdog.beat()  # an idle model starts its clock now
            self._queue.add(job)
            self._jobs.add(job)
            self._cond.notify_all()

    def forget(self, job: Job) -> None:
        """The request was answered (or its caller left)."""
        with self._cond:
            self._jobs.discard(job)

    def unanswered(self) -> set[Job]:
        """Every request not yet answered (a thread died: they all get an error)."""
        with self._cond:
            self._cond.notify_all()
            return set(self._jobs)

    def stop(self) -> None:
        """The threads end once the batches in hand finish; queued work is never taken."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    # -- a prepare thread's side ---------------------------------------------------------

    def arrivals(self, lane: Lane) -> list[Job] | None:
        """Wait until requests arrived to be measured or `lane` may take a batch; returns
        the new arrivals ([] when none), or None once stopping."""
        with self._cond:
            while not self._stopping and not (self._queue.has_arrivals or self._may_take(lane)):
                self._cond.wait()
            return None if self._stopping else self._queue.arrivals()

    def take(
        self, lane: Lane, arrived: list[Job], measured: Sequence[tuple[list[Any], list[int]]]
    ) -> Batch:
        """Record the arrivals as measured (their inputs as the stages take them, tokens per
        input); then the next batch if `lane` may take one ([] if not): `lane` prepares it."""
        with self._cond:
            for job, (inputs, _) in zip(arrived, measured, strict=True):
                job.inputs = inputs
            if arrived:
                self._queue.measured(arrived, [lengths for _, lengths in measured])
                self._cond.notify_all()
            batch = self._queue.take() if self._may_take(lane) else []
            lane.preparing = bool(batch)
            return batch

    def prepared(self, lane: Lane, prepared: Prepared | None) -> None:
        """`lane`'s batch is prepared for its forward pass; None: preparing it failed."""
        with self._cond:
            lane.preparing = False
            lane.slot = prepared
            if prepared is None:
                self._watchdog.beat()
            self._cond.notify_all()

    # -- a forward thread's side ---------------------------------------------------------

    def next_prepared(self, lane: Lane) -> Prepared | None:
        """Wait for `lane`'s prepared batch, which its forward pass then holds; None once
        stopping with no batch prepared."""
        with self._cond:
            while lane.slot is None and not self._stopping:
                self._cond.wait()
            prepared, lane.slot = lane.slot, None
            if prepared is not None:
                lane.busy = True
                self._cond.notify_all()  # the prepare thread may start on the next batch
            return prepared

    def forwarded(self, lane: Lane, prepared: Prepared, results: Sequence[Any] | None) -> list[Job]:
        """`lane`'s forward pass ended: store its results, one per input (None: it failed).
        Returns the requests it completed.

        Raises:
            ValueError: `results` or the prepared tokens do not match the batch (the worker
                checks first; the lane is free again all the same).
        """
        with self._cond:
            lane.busy = False
            self._watchdog.beat()
            self._cond.notify_all()
            if results is None:
                return []
            finished = []
            for (job, i), result, used in zip(
                prepared.batch, results, prepared.tokens, strict=True
            ):
                job.results[i] = result
                job.tokens += used
                job.remaining -= 1
                if job.remaining == 0:
                    finished.append(job)
            return finished

    def _pending(self) -> bool:
        return bool(self._queue.queued) or any(lane.holding for lane in self._lanes)

    def _may_take(self, lane: Lane) -> bool:
        if not self._queue.has_ready or lane.slot is not None:
            return False
        # While the forward pass runs, wait for a full batch (better batches); when it is
        # idle, take whatever is queued.
        return not lane.busy or self._queue.full
