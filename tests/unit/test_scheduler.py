"""Scheduler with fake runners: batching, keys, dropped callers, failures, health, rate.

No test waits for time to pass: a held forward pass (FakeRunner.gate, with `entered` to
say it started), requests queued before the threads start, and a FakeClock the watchdog
and the rate read drive them."""

from __future__ import annotations

import asyncio
import threading

import pytest

from handlers.engine.batch_queue import FAIR_PASSES, Job
from handlers.engine.feed import Feed, Prepared
from handlers.engine.rate import Rate
from handlers.engine.scheduler import Scheduler
from handlers.engine.stages import Limits
from handlers.engine.watchdog import Watchdog
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


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def make(runner, clock):
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

    yield build
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


async def test_results_in_order_and_token_counts(make):
    scheduler = make()
    results, tokens = await scheduler.run(["a b", "c", "d e f"])
    assert results == ["A B", "C", "D E F"] and tokens == 6


async def test_requests_queued_behind_a_busy_forward_pass_share_full_batches(make, runner):
    scheduler = make(batch_size=4)
    first = await hold(scheduler, runner)
    requests = [[f"x{i}", f"y{i}"] for i in range(4)]
    others = await queued(scheduler, *requests, lengths=[1, 1])  # measured as they arrive
    runner.gate.set()
    replies = await asyncio.gather(first, *others)
    assert [r[0] for r in replies[1:]] == [[f"X{i}", f"Y{i}"] for i in range(4)]
    assert [len(b) for b in runner.batches] == [1, 4, 4]


async def test_a_batch_holds_one_key_only(make, runner):
    scheduler = make(batch_size=8, start=False)
    left = await queued(scheduler, ["a"], key="left")
    right = await queued(scheduler, ["b"], key="right")
    scheduler.start()
    await asyncio.gather(*left, *right)
    assert runner.batches == [["a"], ["b"]]


async def test_a_cancelled_caller_is_never_computed(make, runner):
    scheduler = make(batch_size=4, start=False)
    gone, kept = await queued(scheduler, ["never"], ["kept"])
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    scheduler.start()
    assert await kept == (["KEPT"], 1)
    assert runner.batches == [["kept"]]
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
    assert scheduler.stats()["failed_batches"] == 1


async def test_stall_makes_it_not_ready_then_dead(make, runner, clock):
    scheduler = make(stall=10.0)
    first = await hold(scheduler, runner)
    clock.advance(9.0)
    assert scheduler.health() == "ok"
    clock.advance(2.0)
    assert scheduler.health() == "stalled"
    clock.advance(40.0)  # past 5 x the watchdog
    assert scheduler.health() == "dead"
    runner.gate.set()
    await first
    assert scheduler.health() == "ok"


async def test_an_idle_model_is_never_stalled(make, runner, clock):
    scheduler = make(stall=10.0)
    await scheduler.run(["a"])
    clock.advance(1000.0)
    assert scheduler.health() == "ok"
    first = await hold(scheduler, runner)
    assert scheduler.health() == "ok"  # its clock starts when work arrives
    runner.gate.set()
    await first


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_thread_fails_its_requests_and_is_dead(make, runner):
    scheduler = make()
    runner.fail_next = KeyboardInterrupt()  # not an Exception: the thread ends
    with pytest.raises(ServiceError) as info:
        await scheduler.run(["a"])
    assert info.value.kind is ErrorKind.NOT_READY and info.value.code == "model_dead"
    assert scheduler.health() == "dead"


async def test_retry_after_is_the_depth_over_the_measured_rate(make, runner, clock):
    scheduler = make(capacity=2, max_waiting=2)
    first = await hold(scheduler, runner)
    clock.advance(0.5)  # one input in 0.5 s: 2 items a second
    runner.gate.set()
    await first
    assert scheduler.stats()["items_per_second"] == 2.0
    async with scheduler.admit(2):
        waiter = asyncio.ensure_future(scheduler.admission.acquire(2))
        await asyncio.sleep(0)
        with pytest.raises(ServiceError) as info:
            await scheduler.admission.acquire(1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert info.value.kind is ErrorKind.OVERLOADED
    assert info.value.retry_after == 2  # 2 admitted + 2 waiting, at 2 a second


async def test_a_busy_replica_waits_for_a_full_batch_and_an_idle_one_takes_any(clock):
    """The Feed alone, stepped by hand as a replica's threads step it."""
    loop = asyncio.get_running_loop()
    watchdog = Watchdog(stall_seconds=10.0, dead_factor=5, clock=clock)
    feed = Feed(batch_size=4, max_batch_tokens=1_000, watchdog=watchdog)
    lane = feed.lane()

    def request(*inputs: str) -> None:
        n = len(inputs)
        job = Job(
            inputs=list(inputs),
            key=None,
            loop=loop,
            future=loop.create_future(),
            results=[None] * n,
            remaining=n,
            left=list(range(n)),
            lengths=[1] * n,
        )
        feed.add(job)

    request("a")
    first = feed.take(lane, [], [])  # idle: takes what is queued
    assert [job.inputs[i] for job, i in first] == ["a"]
    feed.prepared(lane, Prepared(batch=first, features=None, tokens=[1], began=clock()))
    prepared = feed.next_prepared(lane)  # its forward pass runs
    request("b", "c")
    assert feed.take(lane, [], []) == []  # busy: waits for a full batch
    request("d", "e")
    assert len(feed.take(lane, [], [])) == 4
    assert prepared is not None
    assert [job.results for job in feed.forwarded(lane, prepared, ["A"])] == [["A"]]


def test_the_rate_is_smoothed_over_batches_and_bounds_retry_after():
    rate = Rate(batch_size=8)
    assert rate.retry_after(16) == 2  # before any batch: batch_size a second
    rate.observe(10, 1.0)
    assert rate.per_second == 10.0 and rate.retry_after(25) == 3
    rate.observe(20, 1.0)
    assert rate.per_second == pytest.approx(12.0)  # 0.8 x 10 + 0.2 x 20
    assert rate.retry_after(0) == 1 and rate.retry_after(10_000) == 60


def text(n: int, tag: str) -> str:
    return " ".join([tag] * n)


async def test_batches_group_similar_lengths_across_requests(make, runner):
    scheduler = make(batch_size=4, start=False)
    mixed = [[text(1, f"s{r}"), text(9, f"l{r}"), text(1, f"t{r}"), text(9, f"m{r}")] for r in "ab"]
    replies = await queued(scheduler, *mixed)
    scheduler.start()
    answers = await asyncio.gather(*replies)
    assert [a[0] for a in answers] == [[t.upper() for t in inputs] for inputs in mixed]
    assert [words(b) for b in runner.batches] == [[1] * 4, [9] * 4]
    stats = scheduler.stats()
    assert stats["tokens"] == stats["padded_tokens"] == 2 * (1 + 9 + 1 + 9)


async def test_a_query_queued_behind_long_chunks_goes_first(make, runner):
    scheduler = make(batch_size=4, start=False)
    replies = await queued(scheduler, [text(50, f"c{i}") for i in range(8)], ["query"])
    scheduler.start()
    await asyncio.gather(*replies)
    assert "query" in runner.batches[0]  # not behind the 8 chunks queued before it


async def test_a_batch_holds_at_most_max_batch_tokens_padded(make, runner):
    scheduler = make(batch_size=8, tokens=10, start=False)
    fives = [text(5, f"f{i}") for i in range(4)]
    replies = await queued(scheduler, fives, [text(30, "huge")])  # huge: alone over budget
    scheduler.start()
    await asyncio.gather(*replies)
    assert sorted(len(b) for b in runner.batches) == [1, 2, 2]
    assert all(len(b) * max(words(b)) <= 10 for b in runner.batches if len(b) > 1)


async def test_a_long_request_is_passed_over_at_most_fair_passes_times(make, runner):
    scheduler = make(batch_size=2, start=False)
    replies = await queued(scheduler, [text(40, "long")], *([f"s{i}"] for i in range(20)))
    scheduler.start()
    await asyncio.gather(*replies)
    position = next(i for i, b in enumerate(runner.batches) if text(40, "long") in b)
    assert position == FAIR_PASSES  # shortest first would have made it last (10)
    assert len(runner.batches) == 11


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
