"""Scheduler with fake runners: length-homogeneous batches across requests within the token
budget, fairness to long requests, and the measuring step (each request measured once, its
inputs reaching the model's stages as measured; an estimate when the counter fails)."""

from __future__ import annotations

import asyncio

from handlers.engine.batch_queue import FAIR_PASSES
from tests.unit.scheduler_fakes import queued, words


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
