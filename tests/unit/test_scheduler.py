"""Scheduler with fake runners: batching, keys, dropped callers, failures, health."""

from __future__ import annotations

import asyncio
import threading

import pytest

from handlers.engine.batch_queue import FAIR_PASSES
from handlers.engine.scheduler import Scheduler
from handlers.engine.stages import Limits
from handlers.errors import ErrorKind, ServiceError


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


def words(texts):
    """The fakes' token count: one per word."""
    return [len(text.split()) for text in texts]


def measure_words(texts):
    """The fakes' measuring step: texts as they are, one token per word."""
    return list(texts), words(texts)


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture
def make(runner):
    made: list[Scheduler] = []

    def build(
        batch_size: int = 4, stall: float = 30.0, tokens: int = 1_000_000, measure=measure_words
    ) -> Scheduler:
        limits = Limits(batch_size, tokens, 100, 100, 5.0, stall)
        scheduler = Scheduler("m", [runner], limits, measure)
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


def text(n: int, tag: str) -> str:
    return " ".join([tag] * n)


async def test_batches_group_similar_lengths_across_requests(make, runner):
    scheduler = make(batch_size=4)
    first = await blocked(scheduler, runner)
    mixed = [[text(1, f"s{r}"), text(9, f"l{r}"), text(1, f"t{r}"), text(9, f"m{r}")] for r in "ab"]
    replies = [asyncio.ensure_future(scheduler.run(inputs)) for inputs in mixed]
    await asyncio.sleep(0.05)
    runner.gate.set()
    answers = await asyncio.gather(first, *replies)
    assert [a[0] for a in answers[1:]] == [[t.upper() for t in inputs] for inputs in mixed]
    assert [words(b) for b in runner.batches[1:]] == [[1] * 4, [9] * 4]
    stats = scheduler.stats()
    assert stats["tokens"] == stats["padded_tokens"] == 1 + 2 * (1 + 9 + 1 + 9)


async def test_a_query_queued_behind_long_chunks_goes_first(make, runner):
    scheduler = make(batch_size=4)
    first = await blocked(scheduler, runner)
    chunks = asyncio.ensure_future(scheduler.run([text(50, f"c{i}") for i in range(8)]))
    query = asyncio.ensure_future(scheduler.run(["query"]))
    await asyncio.sleep(0.05)
    runner.gate.set()
    await asyncio.gather(first, chunks, query)
    assert "query" in runner.batches[1]  # not behind the 8 chunks queued before it


async def test_a_batch_holds_at_most_max_batch_tokens_padded(make, runner):
    scheduler = make(batch_size=8, tokens=10)
    first = await blocked(scheduler, runner)
    fives = asyncio.ensure_future(scheduler.run([text(5, f"f{i}") for i in range(4)]))
    huge = asyncio.ensure_future(scheduler.run([text(30, "huge")]))  # alone over budget
    await asyncio.sleep(0.05)
    runner.gate.set()
    await asyncio.gather(first, fives, huge)
    assert sorted(len(b) for b in runner.batches[1:]) == [1, 2, 2]
    assert all(len(b) * max(words(b)) <= 10 for b in runner.batches[1:] if len(b) > 1)


async def test_a_long_request_is_passed_over_at_most_fair_passes_times(make, runner):
    scheduler = make(batch_size=2)
    first = await blocked(scheduler, runner)
    long = asyncio.ensure_future(scheduler.run([text(40, "long")]))
    shorts = [asyncio.ensure_future(scheduler.run([f"s{i}"])) for i in range(20)]
    await asyncio.sleep(0.05)
    runner.gate.set()
    await asyncio.gather(first, long, *shorts)
    position = next(i for i, b in enumerate(runner.batches[1:]) if text(40, "long") in b)
    assert position == FAIR_PASSES  # shortest first would have made it last (10)
    assert len(runner.batches[1:]) == 11


async def test_a_failing_counter_falls_back_to_an_estimate(make, runner):
    def broken(texts):
        raise RuntimeError("tokenizer gone")

    scheduler = make(measure=broken)
    assert await scheduler.run(["a b", "c"]) == (["A B", "C"], 3)
    assert scheduler.stats()["queued_items"] == 0


async def test_the_runner_takes_the_inputs_as_the_measuring_step_made_them(make, runner):
    """Tokenised once: what the measuring step made of a request's inputs (a real model's
    Tokens) is what reaches the model's stages, and each request is measured once."""
    seen: list[list[str]] = []

    def tokenising(texts):
        seen.append(list(texts))
        return [f"tokens of {t}" for t in texts], words(texts)

    scheduler = make(measure=tokenising)
    results = await asyncio.gather(scheduler.run(["a b", "c"]), scheduler.run(["d"]))
    assert results == [(["TOKENS OF A B", "TOKENS OF C"], 7), (["TOKENS OF D"], 3)]
    assert sorted(map(tuple, seen)) == [("a b", "c"), ("d",)]
    assert sorted(t for b in runner.batches for t in b) == [
        "tokens of a b",
        "tokens of c",
        "tokens of d",
    ]
