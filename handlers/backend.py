"""The Backend seam of the core, and EngineBackend: loaded models, each behind its own Scheduler."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from . import onnx
from .runners import Loaded, load_infinity
from .scheduler import Limits, Scheduler, model_dead
from .settings import ModelSpec, Settings
from .tokenize import TextTokenizer, Tokenizer

__all__ = ["Backend", "EngineBackend", "ModelInfo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What the core needs to know about one served model."""

    id: str
    capabilities: frozenset[str]
    backend: str
    dimensions: int | None
    created: int


class Backend(Protocol):
    """The seam between the request core and the models."""

    @property
    def ready(self) -> bool: ...

    @property
    def alive(self) -> bool: ...

    def models(self) -> dict[str, ModelInfo]: ...

    def stats(self, model: str) -> dict[str, Any]: ...

    def tokenizer(self, model: str) -> Tokenizer | None:
        """The model's own tokenizer (never truncating), or None when it has no fast one."""
        ...

    def admit(self, model: str, items: int) -> AbstractAsyncContextManager[None]:
        """Hold `items` of the model's capacity (waiting in line if needed) while inside."""
        ...

    async def embed(self, model: str, items: list[Any]) -> tuple[list[np.ndarray], int]:
        """Vectors for texts (str) and, on CLIP-like models, decoded images; and tokens."""
        ...

    async def rerank(self, model: str, query: str, docs: list[str]) -> tuple[list[float], int]:
        """Raw relevance logits of (query, doc) pairs in `docs` order, and tokens."""
        ...

    def close_admission(self) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class EngineBackend:
    """One Scheduler per configured model, addressed by served id only (never a fallback)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._schedulers: dict[str, Scheduler] = {}
        self._info: dict[str, ModelInfo] = {}
        self._tokenizers: dict[str, TextTokenizer | None] = {}
        self._started = False

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
        return self._schedulers[model].stats()

    def tokenizer(self, model: str) -> TextTokenizer | None:
        return self._tokenizers[model]

    def admit(self, model: str, items: int) -> AbstractAsyncContextManager[None]:
        return self._schedulers[model].admit(items)

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
        specs = self._settings.models
        loaded = await asyncio.to_thread(lambda: [self._load(spec) for spec in specs])
        created = int(time.time())
        for spec, model in zip(specs, loaded, strict=True):
            scheduler = Scheduler(spec.served_id, model.runners, self._limits(spec))
            scheduler.start()
            self._schedulers[spec.served_id] = scheduler
            self._tokenizers[spec.served_id] = model.tokenizer
            dims = None
            if "embed" in model.capabilities:
                vectors, _ = await scheduler.run(["dimension probe"])
                dims = int(vectors[0].shape[-1])
            self._info[spec.served_id] = ModelInfo(
                spec.served_id, model.capabilities, model.backend, dims, created
            )
        self._started = True
        log.info(
            "models ready in %.1fs: %s",
            time.perf_counter() - began,
            ", ".join(f"{m} {sorted(i.capabilities)} ({i.backend})" for m, i in self._info.items()),
        )

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in self._schedulers.values()))

    def _limits(self, spec: ModelSpec) -> Limits:
        s = self._settings
        return Limits(
            batch_size=spec.batch_size,
            capacity=s.infinity_queue_size,
            max_waiting=s.max_waiting_items,
            queue_timeout=s.queue_timeout_seconds,
            stall_seconds=s.watchdog_seconds,
        )

    def _load(self, spec: ModelSpec) -> Loaded:
        """Load one model. With BACKEND=optimum an embedder is exported to ONNX once (see
        onnx.plan) and run by onnxruntime; other models run on torch, with a log line."""
        backend = self._settings.backend
        if backend == "optimum":
            root = onnx.cache_root(self._settings.hf_home)
            decision = onnx.plan(spec.path, spec.served_id, spec.dtype, root)
            if isinstance(decision, onnx.OnnxPlan):
                from .ort import OnnxEmbedder

                log.info(
                    "model %s: ONNX %s from %s, %s pooling",
                    spec.served_id,
                    decision.precision,
                    decision.folder,
                    decision.pooling,
                )
                runner = OnnxEmbedder(decision.folder, decision.precision, decision.pooling)
                tokenizer = TextTokenizer(runner.tokenizer, runner.max_length)
                return Loaded([runner], frozenset({"embed"}), backend, tokenizer)
            log.warning("model %s: %s; serving it with BACKEND=torch", spec.served_id, decision)
            backend = "torch"
        return load_infinity(spec, self._settings, backend)

    def _scheduler(self, model: str) -> Scheduler:
        scheduler = self._schedulers[model]
        if scheduler.health() == "dead":
            raise model_dead()
        return scheduler

    async def embed(self, model: str, items: list[Any]) -> tuple[list[np.ndarray], int]:
        return await self._scheduler(model).run(items)

    async def rerank(self, model: str, query: str, docs: list[str]) -> tuple[list[float], int]:
        scores, tokens = await self._scheduler(model).run([(query, doc) for doc in docs])
        return [float(score) for score in scores], tokens
