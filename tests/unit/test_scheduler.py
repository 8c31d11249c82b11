"""Scheduler with fake runners: batching, keys, dropped callers, failures, health, rate.

No test waits for time to pass: a held forward pass (FakeRunner.gate, with `entered` to
say it started), requests queued before the threads start, and a FakeClock the watchdog
and the rate read drive them (tests/unit/scheduler_fakes.py)."""

from __future__ import annotations

import asyncio

import pytest

from handlers.engine.batch_queue import Job
from handlers.engine.feed import Feed, Prepared
from handlers.engine.rate import Rate
from handlers.engine.watchdog import Watchdog
from handlers.errors import ErrorKind, ServiceError
from tests.unit.scheduler_fakes import hold, queued


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
