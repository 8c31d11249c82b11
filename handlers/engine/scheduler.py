"""One model's request path: admission, a queue worked by batching threads, health, stats."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from typing import Any

from handlers.engine.admission import Admission
from handlers.engine.batch_queue import Job
from handlers.engine.batch_stats import BatchStats
from handlers.engine.feed import Feed
from handlers.engine.rate import Rate
from handlers.engine.replies import Replies
from handlers.engine.stages import Limits, Runner
from handlers.engine.text_tokenizer import Measure
from handlers.engine.watchdog import Watchdog
from handlers.engine.workers import Worker

__all__ = ["Scheduler"]


class Scheduler:
    """Admission, queue, batching threads and health for one served model; its parts:

    - `admission` (Admission): the item cap and the waiting line, on the event loop; its
      Retry-After from the model's `Rate`;
    - the Feed: the one owner of the BatchQueue (length-homogeneous batches within the token
      budget, fair) and of each replica's batch in hand, behind one condition: no polling;
    - per runner (model replica), a Worker: a prepare thread (measure new requests, take
      and prepare the next batch) and a forward thread (forward pass, post-process);
    - Replies: results back to the event loop once per batch; a failed batch fails only
      its requests; a dead thread fails them all;
    - the Watchdog: `stalled` when queued work makes no progress for
      `limits.stall_seconds`, `dead` past `dead_factor` times that or when a thread died;
    - BatchStats: the counters /metrics and /v1/models read.

    `clock` (monotonic seconds) times the watchdog and the rate.
    """

    def __init__(
        self,
        *,
        name: str,
        runners: Sequence[Runner],
        limits: Limits,
        measure: Measure | None = None,  # None: estimated from characters
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.limits = limits
        self.runners = tuple(runners)
        self._rate = Rate(batch_size=limits.batch_size)
        self._stats = BatchStats(batch_size=limits.batch_size)
        self._watchdog = Watchdog(
            stall_seconds=limits.stall_seconds, dead_factor=limits.dead_factor, clock=clock
        )
        self._feed = Feed(
            batch_size=limits.batch_size,
            max_batch_tokens=limits.max_batch_tokens,
            watchdog=self._watchdog,
        )
        self.admission = Admission(
            model=name,
            capacity=limits.capacity,
            max_waiting=limits.max_waiting,
            timeout=limits.queue_timeout,
            retry_after=self._rate.retry_after,
        )
        replies = Replies(
            name=name, feed=self._feed, stats=self._stats, rate=self._rate, clock=clock
        )
        self._workers = [
            Worker(
                name=f"{name}#{i}",
                runner=runner,
                feed=self._feed,
                outcomes=replies,
                measure=measure,
                clock=clock,
            )
            for i, runner in enumerate(self.runners)
        ]

    @property
    def counts(self) -> dict[str, int]:
        """Inputs and batches computed, failed batches; the queue's dropped inputs, tokens
        and padded tokens."""
        return {**self._stats.counts, **self._feed.counts}

    @property
    def batch_sizes(self) -> list[int]:
        """Finished batches by size (index 0 unused)."""
        return self._stats.sizes

    def start(self) -> None:
        """Start every replica's threads (requests queued before are batched then)."""
        for worker in self._workers:
            worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads once the batches in hand finish; queued work is dropped."""
        self._feed.stop()
        for worker in self._workers:
            worker.join(timeout)

    @contextlib.asynccontextmanager
    async def admit(self, items: int) -> AsyncIterator[None]:
        """Hold `items` of the model's capacity for the body of the `async with`.

        Raises:
            ServiceError: as Admission.acquire (TOO_LARGE, OVERLOADED, NOT_READY).
        """
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
                NOT_READY when the scheduler is stopping or a batching thread died.
        """
        if not inputs:
            return [], 0
        loop = asyncio.get_running_loop()
        n = len(inputs)
        job = Job(
            inputs=inputs,
            key=key,
            loop=loop,
            future=loop.create_future(),
            results=[None] * n,
            remaining=n,
            left=list(range(n)),
            lengths=None if lengths is None else list(lengths),
        )
        self._feed.add(job)
        try:
            return await job.future
        except asyncio.CancelledError:
            job.dropped = True
            raise
        finally:
            self._feed.forget(job)

    def health(self) -> str:
        """'ok', 'stalled' (not ready) or 'dead' (not alive)."""
        if not all(worker.alive for worker in self._workers):
            return "dead"
        return self._watchdog.health(pending=self._feed.pending())

    def stats(self) -> dict[str, Any]:
        """Live figures for /v1/models: admission, queue, limits, rate, health, counts."""
        return {
            "admitted_items": self.admission.admitted,
            "peak_admitted_items": self.admission.peak,
            "waiting_items": self.admission.waiting,
            "queued_items": self._feed.queued,
            "batch_size": self.limits.batch_size,
            "max_batch_tokens": self.limits.max_batch_tokens,
            "items_per_second": round(self._rate.per_second, 1),
            "health": self.health(),
            **self.counts,
        }
