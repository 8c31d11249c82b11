"""Scheduler with fake runners: batching, keys, dropped callers, failures, health."""

from __future__ import annotations

import asyncio
import threading

import pytest

from handlers.errors import ErrorKind, ServiceError
from handlers.scheduler import Scheduler
from handlers.stages import Limits


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


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture
def make(runner):
    made: list[Scheduler] = []

    def build(batch_size: int = 4, stall: float = 30.0) -> Scheduler:
        scheduler = Scheduler("m", [runner], Limits(batch_size, 100, 100, 5.0, stall))
        scheduler.start()
        made.append(scheduler)
        return scheduler

    yield build
    runner.gate.set()
    for scheduler in made:
        scheduler.stop()


async def blocked(scheduler: Scheduler, runner: FakeRunner) -> asyncio.Future:
    """Occupy the forward thread with one request until runner.gate is set."""
    runner.gate.clear()
    runner.entered.clear()
    first = asyncio.ensure_future(scheduler.run(["first"]))
    await asyncio.to_thread(runner.entered.wait, 5)
    return first


async def test_results_in_order_and_token_counts(make):
    scheduler = make()
    results, tokens = await scheduler.run(["a b", "c", "d e f"])
    assert results == ["A B", "C", "D E F"] and tokens == 6


async def test_queued_requests_share_batches_of_at_most_batch_size(make, runner):
    scheduler = make(batch_size=4)
    first = await blocked(scheduler, runner)
    others = [asyncio.ensure_future(scheduler.run([f"x{i}", f"y{i}"])) for i in range(4)]
    await asyncio.sleep(0.05)
    runner.gate.set()
    replies = await asyncio.gather(first, *others)
    assert [r[0] for r in replies[1:]] == [[f"X{i}", f"Y{i}"] for i in range(4)]
    assert [len(b) for b in runner.batches] == [1, 4, 4]


async def test_a_batch_holds_one_key_only(make, runner):
    scheduler = make(batch_size=8)
    first = await blocked(scheduler, runner)
    left = asyncio.ensure_future(scheduler.run(["a"], key="left"))
    right = asyncio.ensure_future(scheduler.run(["b"], key="right"))
    await asyncio.sleep(0.05)
    runner.gate.set()
    await asyncio.gather(first, left, right)
    assert runner.batches[1:] == [["a"], ["b"]]


async def test_a_cancelled_caller_is_never_computed(make, runner):
    scheduler = make(batch_size=4)
    first = await blocked(scheduler, runner)
    gone = asyncio.ensure_future(scheduler.run(["never"]))
    kept = asyncio.ensure_future(scheduler.run(["kept"]))
    await asyncio.sleep(0.05)
    gone.cancel()
    await asyncio.sleep(0)
    runner.gate.set()
    await asyncio.gather(first, kept)
    assert all("never" not in batch for batch in runner.batches)
    assert scheduler.stats()["dropped"] == 1


async def test_a_failing_batch_fails_its_requests_only(make, runner, caplog):
    scheduler = make()
    runner.fail_next = RuntimeError("device-side assert 0xdeadbeef")
    with pytest.raises(ServiceError) as info:
        await scheduler.run(["a"])
    assert info.value.kind is ErrorKind.INTERNAL and "0xdeadbeef" not in info.value.message
    assert "0xdeadbeef" in caplog.text
    assert await scheduler.run(["b"]) == (["B"], 1)
    assert scheduler.health() == "ok"


async def test_stall_makes_it_not_ready_then_dead(make, runner):
    scheduler = make(stall=0.1)
    first = await blocked(scheduler, runner)
    await asyncio.sleep(0.2)
    assert scheduler.health() == "stalled"
    await asyncio.sleep(0.4)  # past 5 x the watchdog
    assert scheduler.health() == "dead"
    runner.gate.set()
    await first
    assert scheduler.health() == "ok"


async def test_an_idle_model_is_never_stalled(make):
    scheduler = make(stall=0.05)
    await scheduler.run(["a"])
    await asyncio.sleep(0.1)
    assert scheduler.health() == "ok"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_thread_is_dead(make, runner):
    scheduler = make()
    runner.fail_next = KeyboardInterrupt()  # not an Exception: the thread ends
    task = asyncio.ensure_future(scheduler.run(["a"]))
    for _ in range(100):
        if scheduler.health() == "dead":
            break
        await asyncio.sleep(0.02)
    assert scheduler.health() == "dead"
    task.cancel()
