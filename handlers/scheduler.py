"""One model's request path: a queue owned by batching threads, one hand-back per batch, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .admission import Admission
from .errors import ErrorKind, ServiceError, batch_failed, model_dead
from .stages import Limits, Runner

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Job:
    """One request's inputs, filled in by the batching threads."""

    inputs: list[Any]
    key: Hashable
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[tuple[list[Any], int]]
    results: list[Any] = field(default_factory=list)
    tokens: int = 0
    remaining: int = 0
    dropped: bool = False  # the caller went away, or an earlier batch failed


def _length(item: Any) -> int:
    if isinstance(item, str):
        return len(item)
    if isinstance(item, tuple):
        return sum(map(_length, item))
    return 0


class Scheduler:
    """Admission, queue, batching threads and health for one served model.

    `run()` enqueues a request's inputs; per model replica, a *prepare* thread forms the
    next batch (up to `batch_size` items, FIFO, one `key` per batch) and tokenises it
    while a *forward* thread runs the previous one; results go back to the event loop once
    per batch. Threads wait on one condition: no polling. An exception fails only the
    requests in its batch. Health: `stalled` when queued work makes no progress for
    `stall_seconds`; `dead` when a thread died or the stall lasts `dead_factor` times that.
    """

    def __init__(self, name: str, runners: Sequence[Runner], limits: Limits) -> None:
        self.name = name
        self.limits = limits
        self.admission = Admission(
            name, limits.capacity, limits.max_waiting, limits.queue_timeout, self._retry_after
        )
        self._cond = threading.Condition()
        self._queue: deque[tuple[_Job, list[int]]] = deque()
        self._queued = 0
        self._jobs: set[_Job] = set()  # every job not yet answered, for a dying thread
        self._stopping = False
        self._progress_at = time.monotonic()
        self._rate = 0.0  # items per second, smoothed over batches
        self.counts = {"items": 0, "batches": 0, "dropped": 0, "failed_batches": 0}
        self.batch_sizes = [0] * (limits.batch_size + 1)  # finished batches, by size
        self._workers = [_Worker(self, runner, i) for i, runner in enumerate(runners)]

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads once the batches in hand finish; queued work is dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for worker in self._workers:
            worker.join(timeout)

    @contextlib.asynccontextmanager
    async def admit(self, items: int) -> AsyncIterator[None]:
        """Hold `items` of the model's capacity for the body of the `async with`."""
        await self.admission.acquire(items)
        try:
            yield
        finally:
            self.admission.release(items)

    async def run(self, inputs: list[Any], key: Hashable = None) -> tuple[list[Any], int]:
        """Compute `inputs` (admitted by the caller); returns (results in order, tokens).

        Cancelling the caller drops the inputs not yet in a batch.

        Raises:
            ServiceError: INTERNAL when a batch holding these inputs failed (logged);
                NOT_READY when the scheduler is stopping.
        """
        if not inputs:
            return [], 0
        loop = asyncio.get_running_loop()
        job = _Job(inputs, key, loop, loop.create_future(), [None] * len(inputs), 0, len(inputs))
        order = sorted(range(len(inputs)), key=lambda i: _length(inputs[i]))
        with self._cond:
            if self._stopping:
                raise ServiceError(ErrorKind.NOT_READY, "The model is stopping.", retry_after=1)
            if not self._pending():
                self._progress_at = time.monotonic()  # an idle model starts its clock now
            self._queue.append((job, order))
            self._queued += len(order)
            self._jobs.add(job)
            self._cond.notify_all()
        try:
            return await job.future
        except asyncio.CancelledError:
            job.dropped = True
            raise
        finally:
            with self._cond:
                self._jobs.discard(job)

    def health(self) -> str:
        """'ok', 'stalled' (not ready) or 'dead' (not alive)."""
        if any(not worker.alive for worker in self._workers):
            return "dead"
        with self._cond:
            idle_for = time.monotonic() - self._progress_at if self._pending() else 0.0
        if idle_for > self.limits.stall_seconds * self.limits.dead_factor:
            return "dead"
        return "stalled" if idle_for > self.limits.stall_seconds else "ok"

    def stats(self) -> dict[str, Any]:
        return {
            "admitted_items": self.admission.admitted,
            "peak_admitted_items": self.admission.peak,
            "waiting_items": self.admission.waiting,
            "queued_items": self._queued,
            "batch_size": self.limits.batch_size,
            "items_per_second": round(self._rate, 1),
            "health": self.health(),
            **self.counts,
        }

    def _pending(self) -> bool:
        return bool(self._queued) or any(w.holding for w in self._workers)

    def _retry_after(self, depth: int) -> int:
        rate = self._rate or float(self.limits.batch_size)
        return max(1, min(60, math.ceil(depth / rate)))

    # -- called by the worker threads, under self._cond where noted --------------------

    def _take(self, limit: int) -> list[tuple[_Job, int]]:
        """Under the lock: up to `limit` inputs, FIFO, all of the first job's key."""
        batch: list[tuple[_Job, int]] = []
        key: Hashable = None
        while self._queue and len(batch) < limit:
            job, order = self._queue[0]
            if job.dropped:
                self._queue.popleft()
                self._queued -= len(order)
                self.counts["dropped"] += len(order)
                continue
            if batch and job.key != key:
                break
            key = job.key
            room = limit - len(batch)
            taken, rest = order[:room], order[room:]
            if rest:
                self._queue[0] = (job, rest)
            else:
                self._queue.popleft()
            self._queued -= len(taken)
            batch.extend((job, i) for i in taken)
        return batch

    def _finish(
        self, batch: list[tuple[_Job, int]], results: Sequence[Any], tokens: list[int], began: float
    ) -> None:
        """Store a batch's results; hand finished jobs back, one call per event loop."""
        done: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        with self._cond:
            for (job, i), result, used in zip(batch, results, tokens, strict=True):
                job.results[i] = result
                job.tokens += used
                job.remaining -= 1
                if job.remaining == 0:
                    done.setdefault(job.loop, []).append(job)
            now = time.monotonic()
            self._progress_at = now
            rate = len(batch) / max(now - began, 1e-6)
            self._rate = rate if not self._rate else 0.8 * self._rate + 0.2 * rate
            self.counts["items"] += len(batch)
            self.counts["batches"] += 1
            self.batch_sizes[len(batch)] += 1
        for loop, jobs in done.items():
            _call_soon(loop, _resolve, jobs)

    def _fail(self, batch: list[tuple[_Job, int]]) -> None:
        """A stage raised: fail every job in the batch (once each); the rest go on."""
        log.exception("model %s failed on a batch of %d inputs", self.name, len(batch))
        with self._cond:
            self.counts["failed_batches"] += 1
            self._progress_at = time.monotonic()
        self._reject({job for job, _ in batch}, batch_failed)

    def _abandon(self) -> None:
        """A batching thread died: every unanswered job gets 503; new ones are refused."""
        with self._cond:
            jobs = set(self._jobs)
            self._cond.notify_all()
        self._reject(jobs, model_dead)

    def _reject(self, jobs: set[_Job], error: Callable[[], ServiceError]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in jobs:
            job.dropped = True
            by_loop.setdefault(job.loop, []).append(job)
        for loop, those in by_loop.items():
            _call_soon(loop, _reject, those, error)


class _Worker:
    """A prepare thread and a forward thread for one model replica, with a one-batch slot."""

    def __init__(self, scheduler: Scheduler, runner: Runner, index: int) -> None:
        self.s = scheduler
        self.runner = runner
        self.slot: tuple[list[tuple[_Job, int]], Any, list[int]] | None = None
        self.busy = False
        self.preparing = False
        self.died = False
        self.began = 0.0
        name = f"{scheduler.name}#{index}"
        self._threads = [
            threading.Thread(target=self._guard(self._prepare_loop), name=f"prepare {name}"),
            threading.Thread(target=self._guard(self._forward_loop), name=f"forward {name}"),
        ]

    @property
    def holding(self) -> bool:
        """Work taken from the queue and not yet handed back."""
        return self.preparing or self.busy or self.slot is not None

    @property
    def alive(self) -> bool:
        if self.s._stopping:
            return True
        return not self.died and all(t.is_alive() for t in self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _guard(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except BaseException:
                log.critical("model %s: a batching thread died", self.s.name, exc_info=True)
                self.died = True
                self.s._abandon()
                raise

        return run

    def _ready_to_prepare(self) -> bool:
        s = self.s
        if not s._queued or self.slot is not None:
            return False
        # While the forward pass runs, wait for a full batch (better batches); when it is
        # idle, take whatever is queued.
        return not self.busy or s._queued >= s.limits.batch_size

    def _prepare_loop(self) -> None:
        s = self.s
        while True:
            with s._cond:
                while not s._stopping and not self._ready_to_prepare():
                    s._cond.wait()
                if s._stopping:
                    return
                batch = s._take(s.limits.batch_size)
                if not batch:
                    continue
                key = batch[0][0].key
                self.preparing = True
                began = time.monotonic()
            try:
                features, tokens = self.runner.prepare([job.inputs[i] for job, i in batch], key)
            except Exception:
                s._fail(batch)
                with s._cond:
                    self.preparing = False
                    s._cond.notify_all()
                continue
            with s._cond:
                self.preparing = False
                self.slot = (batch, features, tokens)
                self.began = began
                s._cond.notify_all()

    def _forward_loop(self) -> None:
        s = self.s
        while True:
            with s._cond:
                while self.slot is None and not s._stopping:
                    s._cond.wait()
                if self.slot is None:
                    return
                (batch, features, tokens), self.slot = self.slot, None
                began = self.began
                self.busy = True
                s._cond.notify_all()  # the prepare thread may start on the next batch
            try:
                results = self.runner.finish(self.runner.forward(features))
                s._finish(batch, results, tokens, began)
            except Exception:
                s._fail(batch)
            finally:
                with s._cond:
                    self.busy = False
                    s._cond.notify_all()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
        loop.call_soon_threadsafe(callback, *args)


def _resolve(jobs: list[_Job]) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_result((job.results, job.tokens))


def _reject(jobs: list[_Job], error: Callable[[], ServiceError]) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error())
