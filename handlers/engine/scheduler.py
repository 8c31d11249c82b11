"""One model's request path: admission, a batch queue worked by batching threads, one
hand-back per batch, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from typing import Any

from handlers.engine.admission import Admission
from handlers.engine.batch_queue import Batch, BatchQueue, Job, estimate_tokens
from handlers.engine.stages import Limits, Runner
from handlers.engine.text_tokenizer import Measure
from handlers.errors import ErrorKind, ServiceError, batch_failed, model_dead

__all__ = ["Scheduler"]

log = logging.getLogger(__name__)


class Scheduler:
    """Admission, queue, batching threads and health for one served model.

    `run()` adds a request to the BatchQueue; per model replica, a *prepare* thread
    measures new requests (`measure`: the inputs as the model's stages take them, their
    Tokens where the runners collate them, and tokens per input), takes the queue's next
    batch (length-homogeneous, within the token budget, fair: see BatchQueue) and prepares
    it (collates, or tokenises) while a *forward* thread runs the previous one; results go
    back to the event loop once per batch. Threads wait on one condition (`cond`, which
    also guards the queue): no polling. An exception fails only the requests in its batch.
    Health: `stalled` when queued work makes no progress for `stall_seconds`; `dead` when
    a thread died or the stall lasts `dead_factor` times that.
    """

    def __init__(
        self,
        name: str,
        runners: Sequence[Runner],
        limits: Limits,
        measure: Measure | None = None,  # None: estimated from characters
    ) -> None:
        self.name = name
        self.limits = limits
        self.measure = measure
        self.admission = Admission(
            name, limits.capacity, limits.max_waiting, limits.queue_timeout, self._retry_after
        )
        self.cond = threading.Condition()
        self.queue = BatchQueue(limits.batch_size, limits.max_batch_tokens)  # under `cond`
        self.stopping = False
        self._jobs: set[Job] = set()  # every job not yet answered, for a dying thread
        self._progress_at = time.monotonic()
        self._rate = 0.0  # items per second, smoothed over batches
        self._counts = {"items": 0, "batches": 0, "failed_batches": 0}
        self.batch_sizes = [0] * (limits.batch_size + 1)  # finished batches, by size
        self._workers = [_Worker(self, runner, i) for i, runner in enumerate(runners)]

    @property
    def counts(self) -> dict[str, int]:
        """Inputs and batches computed, failed batches; the queue's dropped inputs, tokens
        and padded tokens."""
        return {**self._counts, **self.queue.counts}

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads once the batches in hand finish; queued work is dropped."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
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

    async def run(
        self, inputs: list[Any], key: Hashable = None, lengths: list[int] | None = None
    ) -> tuple[list[Any], int]:
        """Compute `inputs` (admitted by the caller); returns (results in order, tokens).
        `lengths`: their tokens, where the caller counted them already (else measured).

        Cancelling the caller drops the inputs not yet in a batch.

        Raises:
            ServiceError: INTERNAL when a batch holding these inputs failed (logged);
                NOT_READY when the scheduler is stopping.
        """
        if not inputs:
            return [], 0
        loop = asyncio.get_running_loop()
        n = len(inputs)
        job = Job(inputs, key, loop, loop.create_future(), [None] * n, 0, n, left=list(range(n)))
        job.lengths = None if lengths is None else list(lengths)
        with self.cond:
            if self.stopping:
                raise ServiceError(ErrorKind.NOT_READY, "The model is stopping.", retry_after=1)
            if not self._pending():
                self._progress_at = time.monotonic()  # an idle model starts its clock now
            self.queue.add(job)
            self._jobs.add(job)
            self.cond.notify_all()
        try:
            return await job.future
        except asyncio.CancelledError:
            job.dropped = True
            raise
        finally:
            with self.cond:
                self._jobs.discard(job)

    def health(self) -> str:
        """'ok', 'stalled' (not ready) or 'dead' (not alive)."""
        if any(not worker.alive for worker in self._workers):
            return "dead"
        with self.cond:
            idle_for = time.monotonic() - self._progress_at if self._pending() else 0.0
        if idle_for > self.limits.stall_seconds * self.limits.dead_factor:
            return "dead"
        return "stalled" if idle_for > self.limits.stall_seconds else "ok"

    def stats(self) -> dict[str, Any]:
        return {
            "admitted_items": self.admission.admitted,
            "peak_admitted_items": self.admission.peak,
            "waiting_items": self.admission.waiting,
            "queued_items": self.queue.queued,
            "batch_size": self.limits.batch_size,
            "max_batch_tokens": self.limits.max_batch_tokens,
            "items_per_second": round(self._rate, 1),
            "health": self.health(),
            **self.counts,
        }

    def _pending(self) -> bool:
        return bool(self.queue.queued) or any(w.holding for w in self._workers)

    def _retry_after(self, depth: int) -> int:
        rate = self._rate or float(self.limits.batch_size)
        return max(1, min(60, math.ceil(depth / rate)))

    # -- called by the worker threads ---------------------------------------------------

    def hand_back(
        self, batch: Batch, results: Sequence[Any], tokens: list[int], began: float
    ) -> None:
        """Store a batch's results; hand finished jobs back, one call per event loop."""
        done: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        with self.cond:
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
            self._counts["items"] += len(batch)
            self._counts["batches"] += 1
            self.batch_sizes[len(batch)] += 1
        for loop, jobs in done.items():
            _call_soon(loop, _resolve, jobs)

    def fail(self, batch: Batch) -> None:
        """A stage raised: fail every job in the batch (once each); the rest go on."""
        log.exception("model %s failed on a batch of %d inputs", self.name, len(batch))
        with self.cond:
            self._counts["failed_batches"] += 1
            self._progress_at = time.monotonic()
        self._reject({job for job, _ in batch}, batch_failed)

    def abandon(self) -> None:
        """A batching thread died: every unanswered job gets 503; new ones are refused."""
        with self.cond:
            jobs = set(self._jobs)
            self.cond.notify_all()
        self._reject(jobs, model_dead)

    def _reject(self, jobs: set[Job], error: Callable[[], ServiceError]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
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
        self.slot: tuple[Batch, Any, list[int]] | None = None
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
        if self.s.stopping:
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
                self.s.abandon()
                raise

        return run

    def _ready_to_prepare(self) -> bool:
        queue = self.s.queue
        if not queue.has_ready or self.slot is not None:
            return False
        # While the forward pass runs, wait for a full batch (better batches); when it is
        # idle, take whatever is queued.
        return not self.busy or queue.full

    def _prepare_loop(self) -> None:
        s, queue = self.s, self.s.queue
        while True:
            with s.cond:
                while not s.stopping and not (queue.has_arrivals or self._ready_to_prepare()):
                    s.cond.wait()
                if s.stopping:
                    return
                arrived = queue.arrivals()
            measured = [self._measure(job.inputs) for job in arrived]
            lengths = [counts for _, counts in measured]
            with s.cond:
                for job, (inputs, _) in zip(arrived, measured, strict=True):
                    job.inputs = inputs
                if arrived:
                    queue.measured(arrived, lengths)
                    s.cond.notify_all()
                batch = queue.take() if self._ready_to_prepare() else []
                if not batch:
                    continue
                key = batch[0][0].key
                self.preparing = True
                began = time.monotonic()
            try:
                features, tokens = self.runner.prepare([job.inputs[i] for job, i in batch], key)
            except Exception:
                s.fail(batch)
                with s.cond:
                    self.preparing = False
                    s.cond.notify_all()
                continue
            with s.cond:
                self.preparing = False
                self.slot = (batch, features, tokens)
                self.began = began
                s.cond.notify_all()

    def _measure(self, inputs: list[Any]) -> tuple[list[Any], list[int]]:
        """The inputs as the model's stages take them and their tokens, from the model's
        measuring step; the inputs as sent and an estimate without one or if it fails
        (the batch's own pre-process then reports the error)."""
        try:
            if self.s.measure is not None:
                return self.s.measure(inputs)
        except Exception:
            log.debug("model %s: could not measure inputs", self.s.name, exc_info=True)
        return inputs, estimate_tokens(inputs)

    def _forward_loop(self) -> None:
        s = self.s
        while True:
            with s.cond:
                while self.slot is None and not s.stopping:
                    s.cond.wait()
                if self.slot is None:
                    return
                (batch, features, tokens), self.slot = self.slot, None
                began = self.began
                self.busy = True
                s.cond.notify_all()  # the prepare thread may start on the next batch
            try:
                results = self.runner.finish(self.runner.forward(features))
                s.hand_back(batch, results, tokens, began)
            except Exception:
                s.fail(batch)
            finally:
                with s.cond:
                    self.busy = False
                    s.cond.notify_all()


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
        loop.call_soon_threadsafe(callback, *args)


def _resolve(jobs: list[Job]) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_result((job.results, job.tokens))


def _reject(jobs: list[Job], error: Callable[[], ServiceError]) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error())
