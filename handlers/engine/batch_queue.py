"""A model's inputs not yet batched: admission order, token lengths, the choice of each batch."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAIR_PASSES", "WINDOW", "BatchQueue", "Job", "estimate_tokens"]

# A batch is chosen among the oldest WINDOW x batch_size queued inputs; a request passed
# over by FAIR_PASSES batches in a row leads the next one.
WINDOW = 4
FAIR_PASSES = 4


@dataclass(eq=False)
class Job:
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


Batch = list[tuple[Job, int]]  # (request, index of one of its inputs)


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


class BatchQueue:
    """Requests in admission order; each is measured (tokens per input) once, then its
    inputs become candidates for batches. A batch holds inputs of one key, at most
    `batch_size` of them and at most `max_batch_tokens` padded tokens (its longest input x
    its size; one input may exceed it alone). It is chosen among the oldest WINDOW x
    batch_size queued inputs, whichever request they belong to: the shortest first (short
    queries never wait behind long chunks), except that a request passed over by
    FAIR_PASSES batches in a row leads the next one, with its longest input and the
    queued inputs nearest below it in length. So batches are length-homogeneous across
    requests, and no request waits more than FAIR_PASSES batches behind later ones.

    Not thread-safe: its one owner (the scheduler's Feed) calls it under its lock.
    """

    def __init__(self, *, batch_size: int, max_batch_tokens: int) -> None:
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.queued = 0  # inputs not yet in a batch
        self.counts = {
            "dropped": 0,  # inputs of cancelled or failed requests never batched
            "tokens": 0,  # measured tokens of the inputs batched
            "padded_tokens": 0,  # longest input x size, summed over batches
        }
        self._jobs: list[Job] = []  # requests with inputs not yet in a batch, oldest first
        self._arrived: list[Job] = []  # not yet measured
        self._ready_items = 0  # measured inputs not yet in a batch
        self._ready_tokens = 0

    def add(self, job: Job) -> None:
        """A new request, last in admission order; measured already when it comes with
        `lengths` (counted by the core on its way), else handed out by arrivals()."""
        self._jobs.append(job)
        self.queued += len(job.left)
        if job.lengths is None:
            self._arrived.append(job)
        else:
            self.measured([job], [job.lengths])

    def arrivals(self) -> list[Job]:
        """The requests added since the last call: the caller measures them."""
        arrived, self._arrived = self._arrived, []
        return arrived

    @property
    def has_arrivals(self) -> bool:
        return bool(self._arrived)

    def measured(self, jobs: list[Job], lengths: list[list[int]]) -> None:
        """Tokens per input of requests from arrivals(): their inputs become candidates."""
        for job, counts in zip(jobs, lengths, strict=True):
            job.lengths = counts
            self._ready_items += len(job.left)
            self._ready_tokens += sum(counts[i] for i in job.left)

    @property
    def has_ready(self) -> bool:
        """Some measured input waits for a batch."""
        return self._ready_items > 0

    @property
    def full(self) -> bool:
        """A whole batch waits: batch_size inputs or max_batch_tokens tokens."""
        return self._ready_items >= self.batch_size or self._ready_tokens >= self.max_batch_tokens

    def take(self) -> Batch:
        """The next batch (see the class docstring), out of the queue; [] when none."""
        self._drop_cancelled()
        live = [job for job in self._jobs if job.lengths is not None]
        if not live:
            return []
        lead = next((job for job in live if job.passed >= FAIR_PASSES), live[0])
        window: list[tuple[int, int, Job, int]] = []  # (length, age, job, input)
        room = WINDOW * self.batch_size
        for age, job in enumerate(live):
            if job.key != lead.key or (len(window) >= room and job is not lead):
                continue
            assert job.lengths is not None
            window.extend((job.lengths[i], age, job, i) for i in job.left)
        window.sort(key=lambda entry: (entry[0], entry[1]))
        if lead.passed >= FAIR_PASSES:
            top = max(p for p, entry in enumerate(window) if entry[2] is lead)
            fits = self.max_batch_tokens // max(window[top][0], 1)
            size = max(1, min(self.batch_size, top + 1, fits))
            chosen = window[top - size + 1 : top + 1]
        else:
            size, most = 1, min(len(window), self.batch_size)
            while size < most and window[size][0] * (size + 1) <= self.max_batch_tokens:
                size += 1
            chosen = window[:size]
        self._account(live, chosen)
        return [(job, i) for _, _, job, i in chosen]

    def _drop_cancelled(self) -> None:
        dropped = [job for job in self._jobs if job.dropped and job.left]
        for job in dropped:
            self.counts["dropped"] += len(job.left)
            self.queued -= len(job.left)
            if job.lengths is not None:
                self._ready_items -= len(job.left)
                self._ready_tokens -= sum(job.lengths[i] for i in job.left)
            job.left = []
        if dropped:
            self._jobs = [job for job in self._jobs if job.left]

    def _account(self, live: list[Job], chosen: list[tuple[int, int, Job, int]]) -> None:
        """Take `chosen` out of the queue; count who was passed over."""
        taken: dict[Job, set[int]] = {}
        for _, _, job, i in chosen:
            taken.setdefault(job, set()).add(i)
        newest = max(age for _, age, _, _ in chosen)
        for job in live[: newest + 1]:
            indices = taken.get(job)
            if indices is None:
                job.passed += 1
                continue
            assert job.lengths is not None
            job.passed = 0
            job.left = [i for i in job.left if i not in indices]
            self._ready_tokens -= sum(job.lengths[i] for i in indices)
        self.queued -= len(chosen)
        self._ready_items -= len(chosen)
        self._jobs = [job for job in self._jobs if job.left]
        self.counts["tokens"] += sum(length for length, _, _, _ in chosen)
        self.counts["padded_tokens"] += max(length for length, _, _, _ in chosen) * len(chosen)
