"""Admission: the item cap, the FIFO waiting line, its deadline, shutdown and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from handlers.engine.admission import Admission
from handlers.engine.seam import Ticket
from handlers.errors import ErrorKind, ServiceError


def make(capacity: int = 4, max_waiting: int = 8, timeout: float = 5.0) -> Admission:
    return Admission(
        model="m",
        capacity=capacity,
        max_waiting=max_waiting,
        timeout=timeout,
        retry_after=lambda depth: depth,
    )


async def test_reserves_up_to_the_cap_and_never_past_it():
    admission = make(capacity=4)
    await admission.acquire(3)
    waiter = asyncio.ensure_future(admission.acquire(2))
    await asyncio.sleep(0)
    assert not waiter.done() and admission.admitted == 3 and admission.waiting == 2
    admission.release(3)
    await waiter
    assert admission.admitted == 2 and admission.waiting == 0


async def test_a_request_larger_than_the_cap_is_413_naming_both_numbers():
    with pytest.raises(ServiceError) as info:
        await make(capacity=4).acquire(5)
    assert info.value.kind is ErrorKind.TOO_LARGE
    assert "5 items" in info.value.message and "at most 4" in info.value.message


async def test_the_line_is_strict_fifo():
    admission = make(capacity=4)
    await admission.acquire(4)
    order: list[str] = []

    async def enter(name: str, items: int) -> None:
        await admission.acquire(items)
        order.append(name)

    big = asyncio.ensure_future(enter("big", 4))
    await asyncio.sleep(0)
    small = asyncio.ensure_future(enter("small", 1))
    await asyncio.sleep(0)
    admission.release(1)  # room for `small`, but `big` is first in line
    await asyncio.sleep(0)
    assert order == []
    admission.release(3)
    await big
    await asyncio.sleep(0)
    assert order == ["big"] and not small.done() and admission.admitted == 4
    admission.release(4)
    await small
    assert order == ["big", "small"] and admission.admitted == 1


async def test_a_full_line_is_429_with_retry_after_from_the_depth():
    admission = make(capacity=2, max_waiting=2)
    await admission.acquire(2)
    waiter = asyncio.ensure_future(admission.acquire(2))
    await asyncio.sleep(0)
    with pytest.raises(ServiceError) as info:
        await admission.acquire(1)
    assert info.value.kind is ErrorKind.OVERLOADED
    assert info.value.retry_after == 4  # depth: 2 admitted + 2 waiting
    waiter.cancel()


async def test_waiting_past_the_deadline_is_429_and_leaves_the_line():
    admission = make(capacity=1, timeout=0)  # the deadline passes at the loop's next turn
    await admission.acquire(1)
    with pytest.raises(ServiceError) as info:
        await admission.acquire(1)
    assert info.value.kind is ErrorKind.OVERLOADED and "QUEUE_TIMEOUT_SECONDS" in info.value.message
    assert admission.waiting == 0 and admission.admitted == 1


async def test_a_cancelled_waiter_leaves_and_lets_the_next_one_in():
    admission = make(capacity=2)
    await admission.acquire(1)
    head = asyncio.ensure_future(admission.acquire(2))
    await asyncio.sleep(0)
    nxt = asyncio.ensure_future(admission.acquire(1))
    await asyncio.sleep(0)
    head.cancel()
    await nxt  # fits beside the 1 admitted once the head is gone
    assert admission.admitted == 2 and admission.waiting == 0


async def test_close_answers_waiters_503_and_admitted_ones_keep_their_items():
    admission = make(capacity=1)
    await admission.acquire(1)
    waiter = asyncio.ensure_future(admission.acquire(1))
    await asyncio.sleep(0)
    admission.close()
    with pytest.raises(ServiceError) as info:
        await waiter
    assert info.value.kind is ErrorKind.NOT_READY and info.value.retry_after
    assert admission.admitted == 1 and admission.waiting == 0
    with pytest.raises(ServiceError):  # would have to wait
        await admission.acquire(1)
    admission.release(1)
    await admission.acquire(1)  # fits: still served while the server drains


def test_a_ticket_covers_the_inputs_it_admitted_while_its_admission_is_open():
    """The run calls take the admission's ticket: a run of more inputs than were admitted,
    or after the admission closed, is a bug that fails loudly, never runs unadmitted."""
    ticket = Ticket("embedder", 3)
    assert ticket.covers(3) == "embedder" and ticket.covers(1) == "embedder"
    with pytest.raises(RuntimeError, match="4 inputs run on an open ticket for 3"):
        ticket.covers(4)
    ticket.open = False
    with pytest.raises(RuntimeError, match="1 inputs run on a closed ticket for 3"):
        ticket.covers(1)


async def test_the_core_runs_each_request_on_its_own_open_ticket(core, backend):
    """Through the core: every embed and rerank call carried an open ticket of its model,
    closed once the request is answered."""
    await core.dispatch("/v1/embeddings", {"model": "embedder", "input": ["a", "b"]})
    body = {"model": "reranker", "query": "q", "documents": ["a", "b", "c"]}
    await core.dispatch("/v1/rerank", body)
    assert backend.admissions == backend.releases == [2, 3]
    assert [(t.model, t.items, t.open) for t in backend.tickets] == [
        ("embedder", 2, False),
        ("reranker", 3, False),
    ]
