"""The scheduler tests' fakes: a FakeRunner whose forward pass a test can hold or fail, a
FakeClock, and `schedulers`, which builds (and stops) schedulers over them (the `runner`,
`clock` and `make` fixtures of tests/unit/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator

from handlers.engine.scheduler import Scheduler
from handlers.engine.stages import Limits

__all__ = ["FakeClock", "FakeRunner", "hold", "measure_words", "queued", "schedulers", "words"]


class FakeRunner:
    """Upper-cases strings; records every forward batch; can block or fail on demand."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_next: BaseException | None = None

    def prepare(self, inputs, key):
        return list(inputs), [len(text.split()) for text in inputs]

    def forward(self, features):
        self.entered.set()
        self.gate.wait(10)
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.batches.append(features)
        return features

    def finish(self, output):
        return [text.upper() for text in output]


class FakeClock:
    """Monotonic seconds that pass only when a test advances them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def words(texts):
    """The fakes' token count: one per word."""
    return [len(text.split()) for text in texts]


def measure_words(texts):
    """The fakes' measuring step: texts as they are, one token per word."""
    return list(texts), words(texts)


@contextlib.contextmanager
def schedulers(runner: FakeRunner, clock: FakeClock) -> Iterator[Callable[..., Scheduler]]:
    """A builder of schedulers over `runner` and `clock` (the `make` fixture); each one is
    stopped on exit, after the runner's gate is opened."""
    made: list[Scheduler] = []

    def build(
        batch_size: int = 4,
        stall: float = 30.0,
        tokens: int = 1_000_000,
        measure=measure_words,
        capacity: int = 100,
        max_waiting: int = 100,
        start: bool = True,
    ) -> Scheduler:
        limits = Limits(
            batch_size=batch_size,
            max_batch_tokens=tokens,
            capacity=capacity,
            max_waiting=max_waiting,
            queue_timeout=5.0,
            stall_seconds=stall,
        )
        scheduler = Scheduler(
            name="m", runners=[runner], limits=limits, measure=measure, clock=clock
        )
        if start:
            scheduler.start()
        made.append(scheduler)
        return scheduler

    try:
        yield build
    finally:
        runner.gate.set()
        for scheduler in made:
            scheduler.stop()


async def hold(scheduler: Scheduler, runner: FakeRunner) -> asyncio.Future:
    """Occupy the forward thread with one request until runner.gate is set."""
    runner.gate.clear()
    runner.entered.clear()
    first = asyncio.ensure_future(scheduler.run(["first"]))
    assert await asyncio.to_thread(runner.entered.wait, 5)
    return first


async def queued(scheduler: Scheduler, *requests: list[str], **options) -> list[asyncio.Future]:
    """Send the requests; each has reached the queue on return (run() queues a request
    before its first await, so one turn of the loop runs them all that far)."""
    tasks = [asyncio.ensure_future(scheduler.run(inputs, **options)) for inputs in requests]
    await asyncio.sleep(0)
    return tasks
