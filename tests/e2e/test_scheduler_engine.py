"""The scheduler through real engines (tiny models): admission, waiting line, cancellation,
failures, watchdog, liveness, exact usage, remote code, and the RunPod worker's reaction.

Driven by handshakes, not by time: a Gate holds a real forward pass (and says when one
started), tests wait for a state the service reaches (a request admitted, waiting), and the
watchdog reads a FakeClock."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import threading

import numpy as np
import pytest

from handlers.core.dispatch import Core
from handlers.engine import backend
from handlers.engine.scheduler import Scheduler
from handlers.errors import ErrorKind, ServiceError
from runpod_adapter.engine_loop import EngineLoop
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.oracles import embed_oracle, usage_tokens
from tests.tiny_models import WORDS
from tests.unit.scheduler_fakes import FakeClock


class Gate:
    """Wraps a real runner's forward pass: can hold it, fail it, and records its inputs."""

    made: list[Gate] = []  # opened at teardown, so no test leaves a thread waiting

    def __init__(self, runner) -> None:
        self.runner = runner
        self.forward_original = runner.forward
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()
        self.fail: BaseException | None = None
        self.seen: list[int] = []  # batch sizes that reached the forward pass
        self.shapes: list[tuple[int, int]] = []  # (inputs, padded length) of each batch
        runner.forward = self.forward

    def forward(self, features):
        self.entered.set()
        self.open.wait(30)
        if self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        self.seen.append(len(features[0]["input_ids"]))  # (features, normalize)
        self.shapes.append(tuple(features[0]["input_ids"].shape))
        return self.forward_original(features)

    async def hold(self, core: Core, text: str = "hold") -> asyncio.Task:
        """Occupy the forward pass with one request until release()."""
        self.open.clear()
        self.entered.clear()
        task = asyncio.ensure_future(embed(core, [text]))
        await asyncio.to_thread(self.entered.wait, 10)
        return task

    def release(self) -> None:
        self.open.set()


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """The clock of every scheduler the cores made after it build."""
    fake = FakeClock()
    monkeypatch.setattr(backend, "Scheduler", functools.partial(Scheduler, clock=fake))
    return fake


async def eventually(condition, seconds: float = 10.0) -> None:
    """Wait for a state the service reaches on its own (not a timing check)."""
    for _ in range(int(seconds * 50)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


def embed(core: Core, texts: list[str], model: str = EMBED_ID):
    return core.dispatch("/v1/embeddings", {"model": model, "input": texts})


@pytest.fixture(autouse=True)
async def open_gates(make_core):
    """Torn down before make_core's cores stop: no held forward pass outlives a test."""
    yield
    for gate in Gate.made:
        gate.release()
    Gate.made.clear()


def gate(core: Core, model: str = EMBED_ID) -> Gate:
    made = Gate(core.backend.schedulers[model].runners[0])
    Gate.made.append(made)
    return made


async def test_a_concurrent_burst_never_admits_more_than_the_cap(make_core):
    core = await make_core(infinity_queue_size="8", max_waiting_items="1000")
    admission = core.backend.schedulers[EMBED_ID].admission
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, admission.admitted)
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    replies = await asyncio.gather(*(embed(core, [f"dog {i}"] * 3) for i in range(60)))
    watcher.cancel()
    assert all(len(r["data"]) == 3 for r in replies)
    assert 6 <= peak <= 8  # full use of the cap, never past it
    assert admission.admitted == 0 and admission.waiting == 0


async def test_batches_across_requests_keep_the_token_budget_and_exact_vectors(
    make_core, tiny_models
):
    core = await make_core(batch_sizes="8", max_batch_tokens="96")
    held = gate(core)
    first = await held.hold(core)
    vocab = list(WORDS)
    texts = [" ".join(vocab[i : i + n]) for i, n in enumerate((2, 40, 3, 30, 1, 45, 4, 25, 2))]
    requests = [texts[0::2], texts[1::2]]  # each request mixes short and long texts
    tasks = [asyncio.ensure_future(embed(core, inputs)) for inputs in requests]
    admission = core.backend.schedulers[EMBED_ID].admission
    await eventually(lambda: admission.admitted == 1 + len(texts))  # admitted: queued
    held.release()
    await first
    replies = await asyncio.gather(*tasks)
    shapes = held.shapes[1:]
    assert all(n * length <= 96 for n, length in shapes), shapes
    assert sum(n for n, _ in shapes) == len(texts) and len(shapes) < len(texts)
    folder = tiny_models[EMBED_ID]
    for inputs, reply in zip(requests, replies, strict=True):
        got = np.array([item["embedding"] for item in reply["data"]], dtype=np.float32)
        assert (got * embed_oracle(folder, inputs)).sum(1).min() > 0.9999
        assert reply["usage"]["prompt_tokens"] == usage_tokens(folder, inputs)


async def test_the_waiting_line_is_fifo(make_core):
    core = await make_core(infinity_queue_size="2")
    admission = core.backend.schedulers[EMBED_ID].admission
    held = gate(core)
    first = await held.hold(core)  # 1 of 2 items admitted, forward pass held
    order: list[str] = []

    async def call(name: str, n: int) -> None:
        await embed(core, [name] * n)
        order.append(name)

    big = asyncio.ensure_future(call("big", 2))
    await eventually(lambda: admission.waiting == 2)
    small = asyncio.ensure_future(call("small", 1))  # would fit, but waits behind `big`
    await eventually(lambda: admission.waiting == 3)
    stats = (await core.dispatch("/v1/models"))["data"][0]["stats"]
    assert (stats["admitted_items"], stats["waiting_items"]) == (1, 3)
    held.release()
    await asyncio.gather(first, big, small)
    assert order == ["big", "small"]


async def test_a_wait_past_the_deadline_is_429(make_core):
    core = await make_core(infinity_queue_size="2", queue_timeout_seconds="0.001")
    held = gate(core)
    first = await held.hold(core)  # 1 of 2 items admitted until release()
    with pytest.raises(ServiceError) as info:  # the deadline passes while the gate is shut
        await embed(core, ["late"] * 2)
    assert info.value.kind is ErrorKind.OVERLOADED and info.value.retry_after >= 1
    assert "QUEUE_TIMEOUT_SECONDS" in info.value.message
    held.release()
    await first


async def test_a_request_over_the_cap_is_413_naming_both_numbers(make_core):
    core = await make_core(infinity_queue_size="4")
    with pytest.raises(ServiceError) as info:
        await embed(core, ["x"] * 5)
    assert info.value.kind is ErrorKind.TOO_LARGE
    assert "5 items" in info.value.message and "at most 4" in info.value.message


async def test_a_request_whose_caller_left_is_never_computed(make_core):
    core = await make_core()
    held = gate(core)
    first = await held.hold(core)
    admission = core.backend.schedulers[EMBED_ID].admission
    gone = asyncio.ensure_future(embed(core, ["never"] * 5))
    await eventually(lambda: admission.admitted == 6)  # admitted: queued
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    stats = core.backend.stats(EMBED_ID)
    assert stats["admitted_items"] == 1  # the cancelled request gave its items back
    held.release()
    await first
    await eventually(lambda: core.backend.stats(EMBED_ID)["dropped"] == 5)
    assert held.seen == [1]  # one forward pass, of the held request only


async def test_one_failing_batch_leaves_the_next_one_fine(make_core, caplog):
    core = await make_core()
    held = gate(core)
    held.fail = RuntimeError("simulated CUDA error: device-side assert at 0xdeadbeef")
    with pytest.raises(ServiceError) as info:
        await embed(core, ["a", "b"])
    assert info.value.kind is ErrorKind.INTERNAL and "0xdeadbeef" not in info.value.message
    assert "simulated CUDA error" in caplog.text
    assert len((await embed(core, ["a", "b"]))["data"]) == 2
    assert core.ready and core.alive


async def test_the_watchdog_flips_readiness_then_liveness_on_a_stalled_batch(make_core, clock):
    core = await make_core(watchdog_seconds="10")
    held = gate(core)
    first = await held.hold(core)
    clock.advance(11)
    assert not core.ready and core.alive  # stalled: out of rotation, not yet replaced
    clock.advance(40)  # past 5 x WATCHDOG_SECONDS
    assert not core.alive
    held.release()
    await first
    assert core.ready and core.alive


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_dead_model_fails_liveness_and_its_requests(make_core):
    core = await make_core()
    held = gate(core)
    held.fail = KeyboardInterrupt()  # not an Exception: the batching thread ends
    with pytest.raises(ServiceError) as info:
        await asyncio.wait_for(embed(core, ["a"]), 10)
    assert info.value.kind is ErrorKind.NOT_READY
    assert not core.alive and not core.ready
    with pytest.raises(ServiceError) as again:
        await embed(core, ["b"])
    assert again.value.kind is ErrorKind.NOT_READY and again.value.code == "model_dead"


async def test_the_runpod_worker_fails_jobs_in_flight_and_exits_when_a_model_dies(make_core, clock):
    core = await make_core(watchdog_seconds="10")
    held = gate(core)
    exits: list[bool] = []

    # the engines already run in this loop: the adapter's loop only hosts the handlers
    engine_loop = EngineLoop(core, on_dead=lambda: exits.append(True), check_every=0.05)
    engine_loop._loop = asyncio.get_running_loop()
    engine_loop._start_watch()
    held.open.clear()
    job = asyncio.ensure_future(engine_loop._tracked({"input": {"model": EMBED_ID, "input": "a"}}))
    await asyncio.to_thread(held.entered.wait, 10)
    clock.advance(51)  # held past 5 x WATCHDOG_SECONDS: dead
    output = await asyncio.wait_for(job, 10)
    assert output["code"] == 503 and output["object"] == "error"
    assert exits == [True]
    held.release()


async def test_usage_equals_the_tokenizers_own_count(make_core, tiny_models):
    core = await make_core()
    texts = ["the quick brown fox", "a cat", "hello world " * 100]  # the last is truncated
    expected = usage_tokens(tiny_models[EMBED_ID], texts)
    assert (await embed(core, texts))["usage"]["prompt_tokens"] == expected

    query, docs = "capital of france", ["paris is the capital", "a dog"]
    body = await core.dispatch("/v1/rerank", {"model": RERANK_ID, "query": query, "docs": docs})
    assert body["usage"]["prompt_tokens"] == usage_tokens(tiny_models[RERANK_ID], docs, query)

    clip_texts = ["a red dress", "shoe"]
    clip_body = await embed(core, clip_texts, model=CLIP_ID)
    assert clip_body["usage"]["prompt_tokens"] == usage_tokens(tiny_models[CLIP_ID], clip_texts)


REMOTE_CODE = """
import os
from pathlib import Path
from transformers import BertConfig, BertModel
Path(os.environ["REMOTE_CODE_MARKER"]).write_text("executed")

class CustomConfig(BertConfig):
    model_type = "bert"

class CustomModel(BertModel):
    config_class = CustomConfig
"""


async def test_a_model_with_its_own_code_runs_it_only_when_trusted(
    make_core, tiny_models, tmp_path, monkeypatch
):
    folder = tmp_path / "custom"
    shutil.copytree(tiny_models[EMBED_ID], folder)
    (folder / "custom_code.py").write_text(REMOTE_CODE)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {
        "AutoConfig": "custom_code.CustomConfig",
        "AutoModel": "custom_code.CustomModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "marker"
    monkeypatch.setenv("REMOTE_CODE_MARKER", str(marker))

    core = await make_core(model_names=str(folder), served_model_names="custom")
    assert (await embed(core, ["a"], model="custom"))["data"]
    assert not marker.exists()
    await make_core(model_names=str(folder), served_model_names="custom", trust_remote_code="true")
    assert marker.read_text() == "executed"


async def test_batches_are_planned_on_the_tokenizers_own_counts(make_core, tiny_models):
    """What the scheduler batches by (its `tokens` counter) is the exact token count, whether
    it measured the inputs, the truncate=false check counted them, or rerank windows did."""
    core = await make_core()
    texts = ["the quick brown fox", "a cat", "hello world test query"]
    folder = tiny_models[EMBED_ID]

    def batched(model: str) -> int:
        return core.backend.stats(model)["tokens"]

    before = batched(EMBED_ID)
    await embed(core, texts)
    assert batched(EMBED_ID) - before == usage_tokens(folder, texts)
    before = batched(EMBED_ID)
    body = {"model": EMBED_ID, "input": texts, "truncate": False}
    await core.dispatch("/v1/embeddings", body)
    assert batched(EMBED_ID) - before == usage_tokens(folder, texts)

    query, docs = "capital of france", ["paris is the capital", "a dog", "berlin city"]
    before = batched(RERANK_ID)
    await core.dispatch("/v1/rerank", {"model": RERANK_ID, "query": query, "docs": docs})
    assert batched(RERANK_ID) - before == usage_tokens(tiny_models[RERANK_ID], docs, query)
