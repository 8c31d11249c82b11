"""EngineBackend, the engine's side of the Backend seam: loaded models, each behind its own
Scheduler, and their tokenizers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Hashable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from numpy.typing import NDArray

from handlers import memory
from handlers.engine import loading
from handlers.engine.infinity import Loaded
from handlers.engine.scheduler import Scheduler
from handlers.engine.seam import Planner, Prepared, Ticket, Windows
from handlers.engine.stages import Limits
from handlers.engine.text_tokenizer import (
    Counter,
    Measure,
    TextTokenizer,
    input_lengths,
    input_tokens,
    tokenize_data,
)
from handlers.engine.windows import plan_windows
from handlers.errors import model_dead
from handlers.model_info import ModelInfo
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["EngineBackend", "Served"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """One served model: what it is, its scheduler, and how it reads texts."""

    info: ModelInfo
    scheduler: Scheduler
    tokenizer: TextTokenizer | None  # /v1/tokenize and rerank windows (None: no fast one)
    counter: Counter | None  # counts untruncated texts (None: it cannot)
    collates: bool  # its runners take Tokens (counted texts are not tokenised again)
    planner: Planner | None = None  # plans its own rerank windows (else plan_windows)


class EngineBackend:
    """One Scheduler per configured model, addressed by served id only (never a fallback)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._served: dict[str, Served] = {}
        self._info: dict[str, ModelInfo] = {}  # models(): fixed once started
        self._schedulers: dict[str, Scheduler] = {}  # schedulers: the live view /metrics reads
        self._started = False
        self._trimmer: memory.Trimmer | None = None  # while started

    @property
    def ready(self) -> bool:
        """Every model loaded and making progress."""
        return self._started and all(s.health() == "ok" for s in self._schedulers.values())

    @property
    def alive(self) -> bool:
        """False once a model's batching thread died or it stalled far past the watchdog."""
        return all(s.health() != "dead" for s in self._schedulers.values())

    def models(self) -> dict[str, ModelInfo]:
        """Served models by id; fixed once started."""
        return self._info

    def stats(self, model: str) -> dict[str, Any]:
        return self._served[model].scheduler.stats()

    @property
    def schedulers(self) -> Mapping[str, Scheduler]:
        """Each loaded model's scheduler by served id (a live view, for /metrics)."""
        return MappingProxyType(self._schedulers)

    @contextlib.asynccontextmanager
    async def admit(self, model: str, items: int) -> AsyncIterator[Ticket]:
        async with self._served[model].scheduler.admit(items):
            ticket = Ticket(model, items)
            try:
                yield ticket
            finally:
                ticket.open = False

    def close_admission(self) -> None:
        for scheduler in self._schedulers.values():
            scheduler.admission.close()

    async def start(self) -> None:
        """Load every model off the event loop, start its scheduler, and probe the
        embedding size of embedders.

        Loads run one after another: transformers builds models (and the ONNX exporter
        loads them) under process-wide init contexts such as the meta device, and two
        loads in two threads corrupt each other ("Cannot copy out of meta tensor").
        """
        began = time.perf_counter()
        specs, settings = self._settings.models, self._settings
        loaded = await asyncio.to_thread(lambda: [loading.load(spec, settings) for spec in specs])
        infos = await asyncio.to_thread(
            lambda: [loading.describe(*pair, settings) for pair in zip(specs, loaded, strict=True)]
        )
        try:
            await self._start_schedulers(specs, loaded, infos)
        except BaseException:  # no model thread may outlive a failed start (it holds exit)
            await self.stop()
            raise
        self._trimmer = memory.settle()  # after loading, before the first request
        self._started = True
        log.info(
            "models ready in %.1fs: %s",
            time.perf_counter() - began,
            ", ".join(f"{m} {sorted(i.capabilities)} ({i.backend})" for m, i in self._info.items()),
        )

    async def _start_schedulers(
        self, specs: tuple[ModelSpec, ...], loaded: list[Loaded], infos: list[ModelInfo]
    ) -> None:
        """Start each model's scheduler and probe an embedder's dimension with it."""
        for spec, model, info in zip(specs, loaded, infos, strict=True):
            measure = self._measure(model)
            scheduler = Scheduler(
                name=spec.served_id,
                runners=model.runners,
                limits=self._limits(spec),
                measure=measure,
            )
            scheduler.start()
            self._schedulers[spec.served_id] = scheduler
            if model.capabilities & {"embed", "multi_vector_embed"}:  # multi-vector: tokens x dims
                vectors, _ = await scheduler.run(["dimension probe"])
                info = replace(info, dimensions=int(vectors[0].shape[-1]))
            self._info[spec.served_id] = info
            self._served[spec.served_id] = Served(
                info, scheduler, model.tokenizer, model.counter, model.collates, model.planner
            )

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in self._schedulers.values()))
        if self._trimmer is not None:
            memory.release(self._trimmer)
            self._trimmer = None

    @staticmethod
    def _measure(model: Loaded) -> Measure | None:
        """The scheduler's measuring step: the texts' Tokens where the runners collate
        them, else counts only (None: estimated from characters)."""
        if model.counter is None:
            return None
        return (input_tokens if model.collates else input_lengths)(model.counter)

    def _limits(self, spec: ModelSpec) -> Limits:
        s = self._settings
        return Limits(
            batch_size=spec.batch_size,
            max_batch_tokens=spec.max_batch_tokens,
            capacity=s.infinity_queue_size,
            max_waiting=s.max_waiting_items,
            queue_timeout=s.queue_timeout_seconds,
            stall_seconds=s.watchdog_seconds,
        )

    def _scheduler(self, model: str) -> Scheduler:
        scheduler = self._served[model].scheduler
        if scheduler.health() == "dead":
            raise model_dead()
        return scheduler

    async def embed(
        self,
        ticket: Ticket,
        items: list[Any],
        key: Hashable = None,
        lengths: list[int] | None = None,
    ) -> tuple[list[NDArray[Any]], int]:
        return await self._scheduler(ticket.covers(len(items))).run(items, key, lengths)

    async def count(self, model: str, texts: list[str]) -> Prepared:
        served = self._served[model]
        if served.counter is None:
            raise RuntimeError(f"model {model} cannot count tokens")
        read = await asyncio.to_thread(served.counter.tokens, texts)
        return Prepared(read if served.collates else list(texts), [t.count for t in read])

    async def windows(
        self,
        model: str,
        query: str,
        docs: list[str],
        max_tokens: int | None,
        max_chunks: int | None,
        instruction: str | None = None,
    ) -> Windows:
        served = self._served[model]
        if served.planner is not None:
            plan = served.planner
            return await asyncio.to_thread(plan, query, docs, max_tokens, max_chunks, instruction)
        args = (served.tokenizer, query, docs, max_tokens, max_chunks)
        return await asyncio.to_thread(plan_windows, *args)

    async def tokenize(
        self, model: str, texts: list[str], add_special_tokens: bool
    ) -> list[dict[str, Any]] | None:
        tokenizer = self._served[model].tokenizer
        if tokenizer is None:
            return None
        encodings = await asyncio.to_thread(tokenizer.encode, texts, add_special_tokens)
        return tokenize_data(encodings)

    async def decode(
        self, model: str, ids: list[list[int]], skip_special_tokens: bool
    ) -> list[str] | None:
        tokenizer = self._served[model].tokenizer
        if tokenizer is None:
            return None
        return await asyncio.to_thread(tokenizer.decode, ids, skip_special_tokens)

    async def rerank(
        self, ticket: Ticket, windows: Windows, instruction: str | None = None
    ) -> tuple[list[float], int]:
        pairs = [(windows.query, doc) for doc in windows.items]
        scheduler = self._scheduler(ticket.covers(len(pairs)))
        scores, tokens = await scheduler.run(pairs, instruction, windows.lengths)
        return [float(score) for score in scores], tokens

    async def classify(self, ticket: Ticket, items: list[Any]) -> tuple[list[NDArray[Any]], int]:
        scheduler = self._scheduler(ticket.covers(len(items)))
        return await scheduler.run(items)
