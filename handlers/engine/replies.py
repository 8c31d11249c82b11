"""Answers to a model's callers: one call per event loop per batch, results or an error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from handlers.engine.batch_queue import Batch, Job
from handlers.engine.batch_stats import BatchStats
from handlers.engine.feed import Feed, Prepared
from handlers.engine.rate import Rate
from handlers.errors import ServiceError, batch_failed, model_dead

__all__ = ["Replies"]

log = logging.getLogger(__name__)


class Replies:
    """The batching threads' Outcomes for one model: counts each batch (stats, rate) and
    resolves its callers' futures on their own event loops, once per loop per batch."""

    def __init__(
        self,
        *,
        name: str,
        feed: Feed,
        stats: BatchStats,
        rate: Rate,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self._feed = feed
        self._stats = stats
        self._rate = rate
        self._clock = clock

    def done(self, prepared: Prepared, finished: list[Job]) -> None:
        """Count the batch; hand the requests it completed their results."""
        size = len(prepared.batch)
        self._rate.observe(size, self._clock() - prepared.began)
        self._stats.finished(size)
        by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        for job in finished:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            _call_soon(loop, _resolve, jobs)

    def failed(self, batch: Batch) -> None:
        """A stage raised (logged with its traceback): every request in the batch gets
        INTERNAL, once each; their inputs still queued are dropped; the rest go on."""
        log.exception("model %s failed on a batch of %d inputs", self.name, len(batch))
        self._stats.failed()
        _reject({job for job, _ in batch}, batch_failed)

    def died(self) -> None:
        """A batching thread died: every unanswered request gets NOT_READY (model_dead)."""
        _reject(self._feed.unanswered(), model_dead)


def _reject(jobs: Iterable[Job], error: Callable[[], ServiceError]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
    for job in jobs:
        job.dropped = True
        by_loop.setdefault(job.loop, []).append(job)
    for loop, those in by_loop.items():
        _call_soon(loop, _fail, those, error)


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object
) -> None:
    with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting
        loop.call_soon_threadsafe(callback, *args)


def _resolve(jobs: list[Job]) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_result((job.results, job.tokens))


def _fail(jobs: list[Job], error: Callable[[], ServiceError]) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(error())
