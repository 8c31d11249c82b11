"""The Backend seam of the core, and EngineBackend: loaded models, each behind its own Scheduler."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from handlers.engine import adapters, ct2, identity, pipeline, st_runner
from handlers.engine import onnx_export as onnx
from handlers.engine.infinity import Loaded, load_infinity
from handlers.engine.scheduler import Scheduler
from handlers.engine.stages import Limits
from handlers.engine.text_tokenizer import (
    Counter,
    Measure,
    TextTokenizer,
    Tokenizer,
    Tokens,
    input_lengths,
    input_tokens,
)
from handlers.errors import model_dead
from handlers.model_info import ModelInfo
from handlers.settings import ModelSpec, Settings, SettingsError

__all__ = ["Backend", "EngineBackend", "ModelLoadError"]

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """A configured model could not be loaded; the message names it and says why."""


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

    async def embed(
        self,
        model: str,
        items: list[Any],
        key: Hashable = None,
        lengths: list[int] | None = None,
    ) -> tuple[list[np.ndarray], int]:
        """Vectors for texts (str, or Tokens from count_tokens) and, on CLIP-like models,
        decoded images; and tokens. `key` (a scheduler.EmbedKey) holds the request's
        truncation side and normalisation; `lengths` the items' tokens where the caller
        counted them."""
        ...

    async def count_tokens(self, model: str, texts: list[str]) -> tuple[list[Any], list[int]]:
        """Each text as the model's stages take it (its Tokens where the model builds its
        inputs from them: hand these to embed, and the text is not tokenised again; else
        the text) and its tokens as the model would see it untruncated (off the event
        loop)."""
        ...

    async def rerank(
        self,
        model: str,
        query: str | Tokens,
        docs: list[str | Tokens],
        lengths: list[int] | None = None,
    ) -> tuple[list[float], int]:
        """Raw relevance logits of (query, doc) pairs in `docs` order, and tokens; texts
        or their Tokens from the model's tokenizer (rerank windows); `lengths`: each
        pair's tokens where the caller counted them."""
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
        self._counters: dict[str, Counter | None] = {}
        self._collating: set[str] = set()  # models whose runners take Tokens
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

    @property
    def schedulers(self) -> Mapping[str, Scheduler]:
        """Each loaded model's scheduler by served id (a live view, for /metrics)."""
        return MappingProxyType(self._schedulers)

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
        loaded = await asyncio.to_thread(lambda: [self._load_or_raise(spec) for spec in specs])
        infos = await asyncio.to_thread(lambda: list(map(self._describe, specs, loaded)))
        try:
            await self._start_schedulers(specs, loaded, infos)
        except BaseException:  # no model thread may outlive a failed start (it holds exit)
            await self.stop()
            raise
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
            scheduler = Scheduler(spec.served_id, model.runners, self._limits(spec), measure)
            scheduler.start()
            self._schedulers[spec.served_id] = scheduler
            self._tokenizers[spec.served_id] = model.tokenizer
            self._counters[spec.served_id] = model.counter
            if model.collates:
                self._collating.add(spec.served_id)
            if "embed" in model.capabilities:
                vectors, _ = await scheduler.run(["dimension probe"])
                info = replace(info, dimensions=int(vectors[0].shape[-1]))
            self._info[spec.served_id] = info

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in self._schedulers.values()))

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

    def _load_or_raise(self, spec: ModelSpec) -> Loaded:
        """Load one model (see _load).

        Raises:
            ModelLoadError: anything failed, as one line naming the model and why.
        """
        try:
            return self._load(spec)
        except Exception as exc:
            why = " ".join(str(exc).split()) or type(exc).__name__
            raise ModelLoadError(
                f"model {spec.served_id} ({spec.path}) could not be loaded with "
                f"BACKEND={self._settings.backend}: {type(exc).__name__}: {why}"
            ) from exc

    def _load(self, spec: ModelSpec) -> Loaded:
        """Load one model. With BACKEND=optimum an embedder is exported to ONNX once (see
        onnx.plan) and run by onnxruntime; with BACKEND=ctranslate2 an encoder embedder is
        converted once by Infinity, under a cross-process lock. Other models, those with
        task adapters and those whose conversion fails, run on torch, with a log line."""
        backend = self._settings.backend
        names = adapters.find(identity.source_folder(spec.path, spec.revision)[0])
        if backend != "torch" and names:
            reason = f"its task adapters ({', '.join(names)}) are applied on torch only"
        elif backend == "optimum":
            root = onnx.cache_root(self._settings.hf_home)
            decision = onnx.plan(spec.path, spec.served_id, spec.dtype, root)
            if isinstance(decision, onnx.OnnxPlan):
                log.info(
                    "model %s: ONNX %s from %s, %s pooling, %d Dense layers",
                    spec.served_id,
                    decision.precision,
                    decision.folder,
                    decision.pooling,
                    len(decision.dense),
                )
                from handlers.engine.onnx_runner import OnnxEmbedder

                runner = OnnxEmbedder(decision)
                dtype = {"fp32": "float32"}.get(decision.precision, decision.precision)
                embeds = frozenset({"embed"})
                return Loaded([runner], embeds, backend, runner.tokenizer, dtype, collates=True)
            reason = decision
        elif backend == "ctranslate2":
            reason = ct2.unsupported(spec.path, spec.revision)
            if reason is None:
                try:
                    with ct2.conversion_lock(spec.path, spec.revision):
                        return load_infinity(spec, self._settings, backend)
                except Exception as exc:  # CTranslate2's converter refused this checkpoint
                    log.debug("CTranslate2 load of %s failed", spec.served_id, exc_info=True)
                    why = " ".join(str(exc).split()) or type(exc).__name__
                    reason = f"the CTranslate2 conversion failed: {type(exc).__name__}: {why}"
        else:
            return self._load_torch(spec)
        log.warning("model %s: %s; serving it with BACKEND=torch", spec.served_id, reason)
        return self._load_torch(spec)

    def _load_torch(self, spec: ModelSpec) -> Loaded:
        """On torch: a multimodal sentence-transformers pipeline (images as tokens of its
        encoder) by sentence-transformers 6 itself; every other model by Infinity's loader."""
        if st_runner.is_multimodal_pipeline(spec.path, spec.revision):
            log.info("model %s: run by sentence-transformers (multimodal)", spec.served_id)
            return st_runner.load(spec, self._settings)
        return load_infinity(spec, self._settings, "torch")

    def _describe(self, spec: ModelSpec, model: Loaded) -> ModelInfo:
        """The model's identity (blocking: may hash its weights once).

        Raises:
            SettingsError: DEFAULT_PROMPT_NAMES names a prompt the model does not define.
        """
        source, commit = identity.source_folder(spec.path, spec.revision)
        prompts = identity.prompts(source)
        default = spec.default_prompt
        if default is None:  # DEFAULT_PROMPT_NAMES unset: the model's own, if it names one
            default = identity.default_prompt_name(source)
        elif default and default not in prompts:
            raise SettingsError(
                f"DEFAULT_PROMPT_NAMES: model {spec.served_id} has no prompt "
                f"{spec.default_prompt!r}; its prompts: {', '.join(prompts) or 'none'}"
            )
        default = default if default in prompts else None
        digest = None
        if source is not None:
            digest = identity.weights_digest(source, onnx.cache_root(self._settings.hf_home).parent)
        embeds_text = model.capabilities == frozenset({"embed"})
        modules = pipeline.describe(source) if source is not None and embeds_text else None
        pooling = pipeline.pooling(source) if modules else None
        info = ModelInfo(
            spec.served_id,
            model.capabilities,
            model.backend,
            None,
            int(time.time()),
            max_input_tokens=model.max_length,
            dtype=model.dtype,
            revision=commit or (f"sha256:{digest[:16]}" if digest else spec.revision),
            pooling=pooling,
            prompts=prompts,
            default_prompt_name=default,
            adapters=model.adapters,
        )
        if "embed" not in model.capabilities:
            return info
        space = identity.fingerprint(
            weights=digest or f"{spec.path}@{spec.revision}",
            pooling=pooling,
            modules=modules,
            normalized=True,
            max_length=model.max_length,
            default_prompt=prompts.get(default or ""),
            dtype=identity.dtype_class(spec.dtype),
        )
        return replace(info, fingerprint=space)

    def _scheduler(self, model: str) -> Scheduler:
        scheduler = self._schedulers[model]
        if scheduler.health() == "dead":
            raise model_dead()
        return scheduler

    async def embed(
        self,
        model: str,
        items: list[Any],
        key: Hashable = None,
        lengths: list[int] | None = None,
    ) -> tuple[list[np.ndarray], int]:
        return await self._scheduler(model).run(items, key, lengths)

    async def count_tokens(self, model: str, texts: list[str]) -> tuple[list[Any], list[int]]:
        counter = self._counters[model]
        if counter is None:
            raise RuntimeError(f"model {model} cannot count tokens")
        read = await asyncio.to_thread(counter.tokens, texts)
        return (read if model in self._collating else texts), [t.count for t in read]

    async def rerank(
        self,
        model: str,
        query: str | Tokens,
        docs: list[str | Tokens],
        lengths: list[int] | None = None,
    ) -> tuple[list[float], int]:
        pairs = [(query, doc) for doc in docs]
        scores, tokens = await self._scheduler(model).run(pairs, None, lengths)
        return [float(score) for score in scores], tokens
