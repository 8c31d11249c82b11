"""One model's request path: a length-aware queue owned by batching threads, one hand-back per
batch, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
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
    left: list[int] = field(default_factory=list)  # inputs not yet in a batch, in order
    lengths: list[int] | None = None  # tokens per input, once measured
    passed: int = 0  # batches formed of later requests' inputs while this one waited


# A batch is chosen among the oldest WINDOW x batch_size queued inputs; a request passed
# over by FAIR_PASSES batches in a row leads the next one.
WINDOW = 4
FAIR_PASSES = 4


def estimate_tokens(items: list[Any]) -> list[int]:
    """Tokens per input where the model has no counter: about 4 characters a token for a
    text (both texts for a pair); 1 for an image."""
    return [_chars(item) // 4 + 2 if _chars(item) else 1 for item in items]


def _chars(item: Any) -> int:
    if isinstance(item, str):
        return len(item)
    if isinstance(item, tuple):
        return sum(map(_chars, item))
    return 0


class Scheduler:
    """Admission, queue, batching threads and health for one served model.

    `run()` enqueues a request's inputs; per model replica, a *prepare* thread measures new
    requests (`measure`: tokens per input), forms the next batch and tokenises it while a
    *forward* thread runs the previous one; results go back to the event loop once per
    batch. A batch holds inputs of one `key`, at most `batch_size` of them and at most
    `max_batch_tokens` padded tokens (its longest input x its size; one input may exceed
    it alone). It is chosen among the oldest WINDOW x batch_size queued inputs, whichever
    request they belong to: the shortest first (short queries never wait behind long
    chunks), except that a request passed over by FAIR_PASSES batches in a row leads the
    next one, with its longest input and the queued inputs nearest below it in length.
    So batches are length-homogeneous across requests, and no request waits more than
    FAIR_PASSES batches behind later ones. Threads wait on one condition: no polling. An
    exception fails only the requests in its batch. Health: `stalled` when queued work
    makes no progress for `stall_seconds`; `dead` when a thread died or the stall lasts
    `dead_factor` times that.
    """

    def __init__(
        self,
        name: str,
        runners: Sequence[Runner],
        limits: Limits,
        measure: Callable[[list[Any]], list[int]] = estimate_tokens,
    ) -> None:
        self.name = name
        self.limits = limits
        self.measure = measure
        self.admission = Admission(
            name, limits.capacity, limits.max_waiting, limits.queue_timeout, self._retry_after
        )
        self._cond = threading.Condition()
        self._queue: list[_Job] = []  # requests with inputs not yet in a batch, oldest first
        self._unmeasured: list[_Job] = []
        self._queued = 0  # inputs not yet in a batch
        self._ready_items = 0  # of those, measured ones
        self._ready_tokens = 0
        self._jobs: set[_Job] = set()  # every job not yet answered, for a dying thread
        self._stopping = False
        self._progress_at = time.monotonic()
        self._rate = 0.0  # items per second, smoothed over batches
        self.counts = {
            "items": 0,
            "batches": 0,
            "dropped": 0,
            "failed_batches": 0,
            "tokens": 0,  # measured tokens of the inputs batched
            "padded_tokens": 0,  # longest input x size, summed over batches
        }
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
        n = len(inputs)
        job = _Job(inputs, key, loop, loop.create_future(), [None] * n, 0, n, left=list(range(n)))
        with self._cond:
            if self._stopping:
                raise ServiceError(ErrorKind.NOT_READY, "The model is stopping.", retry_after=1)
            if not self._pending():
                self._progress_at = time.monotonic()  # an idle model starts its clock now
            self._queue.append(job)
            self._unmeasured.append(job)
            self._queued += n
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
            "max_batch_tokens": self.limits.max_batch_tokens,
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

    def _measured(self, jobs: list[_Job], lengths: list[list[int]]) -> None:
        """Under the lock: measured requests become candidates for batches."""
        for job, counts in zip(jobs, lengths, strict=True):
            job.lengths = counts
            self._ready_items += len(job.left)
            self._ready_tokens += sum(counts[i] for i in job.left)

    def _take(self) -> list[tuple[_Job, int]]:
        """Under the lock: the next batch (see the class docstring); [] when none is ready."""
        self._drop_cancelled()
        live = [job for job in self._queue if job.lengths is not None]
        if not live:
            return []
        lead = next((job for job in live if job.passed >= FAIR_PASSES), live[0])
        limits = self.limits
        window: list[tuple[int, int, _Job, int]] = []  # (length, age, job, input)
        room = WINDOW * limits.batch_size
        for age, job in enumerate(live):
            if job.key != lead.key or (len(window) >= room and job is not lead):
                continue
            window.extend((job.lengths[i], age, job, i) for i in job.left)
        window.sort(key=lambda entry: (entry[0], entry[1]))
        if lead.passed >= FAIR_PASSES:
            top = max(p for p, entry in enumerate(window) if entry[2] is lead)
            size = _fits(window[top][0], limits.batch_size, limits.max_batch_tokens, top + 1)
            chosen = window[top - size + 1 : top + 1]
        else:
            size, most = 1, min(len(window), limits.batch_size)
            while size < most and window[size][0] * (size + 1) <= limits.max_batch_tokens:
                size += 1
            chosen = window[:size]
        self._account(live, chosen)
        return [(job, i) for _, _, job, i in chosen]

    def _drop_cancelled(self) -> None:
        for job in self._queue:
            if job.dropped and job.left:
                self.counts["dropped"] += len(job.left)
                self._queued -= len(job.left)
                if job.lengths is not None:
                    self._ready_items -= len(job.left)
                    self._ready_tokens -= sum(job.lengths[i] for i in job.left)
                job.left = []
        self._queue = [job for job in self._queue if job.left]

    def _account(self, live: list[_Job], chosen: list[tuple[int, int, _Job, int]]) -> None:
        """Under the lock: take `chosen` out of the queue; count who was passed over."""
        taken: dict[_Job, set[int]] = {}
        for _, _, job, i in chosen:
            taken.setdefault(job, set()).add(i)
        newest = max(age for _, age, _, _ in chosen)
        for job in live[: newest + 1]:
            indices = taken.get(job)
            if indices is None:
                job.passed += 1
                continue
            job.passed = 0
            job.left = [i for i in job.left if i not in indices]
            self._ready_tokens -= sum(job.lengths[i] for i in indices)
        self._queued -= len(chosen)
        self._ready_items -= len(chosen)
        self._queue = [job for job in self._queue if job.left]
        longest = max(length for length, _, _, _ in chosen)
        self.counts["tokens"] += sum(length for length, _, _, _ in chosen)
        self.counts["padded_tokens"] += longest * len(chosen)

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


def _fits(longest: int, size: int, budget: int, available: int) -> int:
    """How many inputs of at most `longest` tokens a batch can hold: at most `size` and
    `available`, at most `budget` padded tokens, and at least one."""
    return max(1, min(size, available, budget // max(longest, 1)))


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
        if not s._ready_items or self.slot is not None:
            return False
        # While the forward pass runs, wait for a full batch (better batches); when it is
        # idle, take whatever is queued.
        full = s._ready_items >= s.limits.batch_size or s._ready_tokens >= s.limits.max_batch_tokens
        return not self.busy or full

    def _prepare_loop(self) -> None:
        s = self.s
        while True:
            with s._cond:
                while not s._stopping and not (s._unmeasured or self._ready_to_prepare()):
                    s._cond.wait()
                if s._stopping:
                    return
                arrived, s._unmeasured = s._unmeasured, []
            lengths = [self._measure(job.inputs) for job in arrived]
            with s._cond:
                if arrived:
                    s._measured(arrived, lengths)
                    s._cond.notify_all()
                batch = s._take() if self._ready_to_prepare() else []
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

    def _measure(self, inputs: list[Any]) -> list[int]:
        """Tokens per input from the model's counter; an estimate if that fails (the
        batch's own pre-process then reports the error)."""
        try:
            return self.s.measure(inputs)
        except Exception:
            log.debug("model %s: could not measure inputs", self.s.name, exc_info=True)
            return estimate_tokens(inputs)

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
