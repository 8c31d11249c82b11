"""Faults through the real Infinity engine: batch failures, restarts, dead engines, queue full."""

from __future__ import annotations

import asyncio

import pytest

from handlers.backend import InfinityBackend, _import_infinity
from handlers.core import Core
from handlers.errors import ErrorKind, ServiceError
from tests.conftest import EMBED_ID
from tests.fakes import FakeImages


@pytest.fixture
async def make_core(make_settings, tiny_models):
    cores: list[Core] = []

    async def make(**env: str) -> Core:
        settings = make_settings(
            model_names=str(tiny_models[EMBED_ID]), served_model_names=EMBED_ID, **env
        )
        core = Core(settings, InfinityBackend(settings), FakeImages())
        await core.start()
        cores.append(core)
        return core

    yield make
    for core in cores:
        await core.stop()


def failing_once(monkeypatch) -> dict[str, int]:
    """Patch the embedder's forward pass to raise while budget['failures'] > 0."""
    _import_infinity()  # imports infinity_emb without letting it take over the root logger
    from infinity_emb.transformer.embedder.sentence_transformer import (
        SentenceTransformerPatched as Model,
    )

    budget = {"failures": 0}
    original = Model.encode_core

    def flaky(self, features):
        if budget["failures"]:
            budget["failures"] -= 1
            raise RuntimeError("simulated CUDA error: device-side assert at 0xdeadbeef")
        return original(self, features)

    monkeypatch.setattr(Model, "encode_core", flaky)
    return budget


async def wait_ready(core: Core, seconds: float = 20.0) -> None:
    for _ in range(int(seconds * 10)):
        if core.ready:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("core did not become ready again")


async def test_a_failing_batch_is_a_clean_500_and_the_engine_recovers(
    make_core, monkeypatch, caplog
):
    budget = failing_once(monkeypatch)
    core = await make_core()
    budget["failures"] = 1
    with pytest.raises(ServiceError) as info:
        await asyncio.wait_for(
            core.dispatch("/v1/embeddings", {"model": EMBED_ID, "input": ["a", "b"]}), 20
        )
    assert info.value.kind is ErrorKind.INTERNAL
    assert "0xdeadbeef" not in info.value.message
    assert "simulated CUDA error" in caplog.text  # the full error is in the log
    await wait_ready(core)
    body = await asyncio.wait_for(
        core.dispatch("/v1/embeddings", {"model": EMBED_ID, "input": ["a", "b"]}), 20
    )
    assert len(body["data"]) == 2


async def test_an_engine_that_cannot_restart_is_reported_not_ready(make_core, monkeypatch):
    budget = failing_once(monkeypatch)
    core = await make_core()
    budget["failures"] = 1
    engine = core.backend._engines[EMBED_ID]

    async def broken_start() -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(engine, "astart", broken_start)
    with pytest.raises(ServiceError):
        await asyncio.wait_for(
            core.dispatch("/v1/embeddings", {"model": EMBED_ID, "input": "a"}), 20
        )
    for _ in range(100):
        if EMBED_ID in core.backend._dead:
            break
        await asyncio.sleep(0.1)
    assert not core.ready
    with pytest.raises(ServiceError) as info:
        await core.dispatch("/v1/embeddings", {"model": EMBED_ID, "input": "a"})
    assert info.value.kind is ErrorKind.NOT_READY


async def test_a_full_queue_answers_429_at_once(make_core):
    core = await make_core(infinity_queue_size="4")
    with pytest.raises(ServiceError) as info:
        await asyncio.wait_for(
            core.dispatch("/v1/embeddings", {"model": EMBED_ID, "input": ["x"] * 5}), 5
        )
    assert info.value.kind is ErrorKind.OVERLOADED and info.value.retry_after == 1
    assert await core.dispatch("/v1/embeddings", {"model": EMBED_ID, "input": ["x"] * 4})
