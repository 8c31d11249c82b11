"""One model replica's batching threads: prepare and forward, one prepared batch between them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from handlers.engine.batch_queue import Batch, Job, estimate_tokens
from handlers.engine.feed import Feed, Prepared
from handlers.engine.stages import Runner
from handlers.engine.text_tokenizer import Measure

__all__ = ["Outcomes", "Worker"]

log = logging.getLogger(__name__)


class Outcomes(Protocol):
    """What the batching threads report, and to whom (the scheduler's Replies)."""

    def done(self, prepared: Prepared, finished: list[Job]) -> None:
        """`prepared`'s results are stored; `finished`: the requests it completed."""
        ...

    def failed(self, batch: Batch) -> None:
        """A stage raised on `batch` (called while handling the exception)."""
        ...

    def died(self) -> None:
        """A batching thread died (called while handling what ended it)."""
        ...


class Worker:
    """A prepare thread and a forward thread for one model replica.

    The prepare thread measures new requests (`measure`: the inputs as the model's stages
    take them and tokens per input; an estimate from characters without one or when it
    fails), takes the queue's next batch and prepares it (collates, or tokenises) while
    the forward thread runs the previous one. Both talk to the queue only through the
    Feed, with this replica's Lane, and report batches to `outcomes`. An exception fails
    only its batch; anything else ends the thread, and `outcomes.died()` is told.
    """

    def __init__(
        self,
        *,
        name: str,
        runner: Runner,
        feed: Feed,
        outcomes: Outcomes,
        measure: Measure | None,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.runner = runner
        self._feed = feed
        self._lane = feed.lane()
        self._outcomes = outcomes
        self._measure = measure
        self._clock = clock
        self._died = False
        self._threads = [
            threading.Thread(target=self._guard(self._prepare_loop), name=f"prepare {name}"),
            threading.Thread(target=self._guard(self._forward_loop), name=f"forward {name}"),
        ]

    @property
    def alive(self) -> bool:
        """Both threads run (or the scheduler is stopping them)."""
        if self._feed.stopping:
            return True
        return not self._died and all(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for each thread (after the Feed stopped)."""
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _guard(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except BaseException:
                log.critical("model %s: a batching thread died", self.name, exc_info=True)
                self._died = True
                self._outcomes.died()
                raise

        return run

    def _prepare_loop(self) -> None:
        while (arrived := self._feed.arrivals(self._lane)) is not None:
            measured = [self._measured(job.inputs) for job in arrived]
            batch = self._feed.take(self._lane, arrived, measured)
            if not batch:
                continue
            began = self._clock()
            try:
                inputs = [job.inputs[i] for job, i in batch]
                features, tokens = self.runner.prepare(inputs, batch[0][0].key)
            except Exception:
                self._feed.prepared(self._lane, None)
                self._outcomes.failed(batch)
                continue
            prepared = Prepared(batch=batch, features=features, tokens=tokens, began=began)
            self._feed.prepared(self._lane, prepared)

    def _measured(self, inputs: list[Any]) -> tuple[list[Any], list[int]]:
        """The inputs as the model's stages take them and their tokens, from the model's
        measuring step; the inputs as sent and an estimate without one or if it fails
        (the batch's own pre-process then reports the error)."""
        try:
            if self._measure is not None:
                return self._measure(inputs)
        except Exception:
            log.debug("model %s: could not measure inputs", self.name, exc_info=True)
        return inputs, estimate_tokens(inputs)

    def _forward_loop(self) -> None:
        while (prepared := self._feed.next_prepared(self._lane)) is not None:
            try:
                results = self.runner.finish(self.runner.forward(prepared.features))
                _check(prepared, results)
            except Exception:
                self._feed.forwarded(self._lane, prepared, None)
                self._outcomes.failed(prepared.batch)
                continue
            self._outcomes.done(prepared, self._feed.forwarded(self._lane, prepared, results))


def _check(prepared: Prepared, results: Sequence[Any]) -> None:
    """Raises ValueError unless the stages gave one result and one token count per input."""
    if not len(results) == len(prepared.tokens) == len(prepared.batch):
        raise ValueError(
            f"{len(results)} results and {len(prepared.tokens)} token counts "
            f"for a batch of {len(prepared.batch)} inputs"
        )
