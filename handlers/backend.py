"""Inference backends: the Backend protocol and InfinityBackend, the only infinity_emb importer."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from . import onnx
from .errors import ErrorKind, ServiceError
from .settings import ModelSpec, Settings

__all__ = ["Backend", "InfinityBackend", "ModelInfo", "RerankHit", "preload_infinity"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What the core needs to know about one served model."""

    id: str
    capabilities: frozenset[str]
    backend: str
    dimensions: int | None
    created: int


@dataclass(frozen=True)
class RerankHit:
    index: int
    score: float


class Backend(Protocol):
    """The seam between the request core and an inference engine."""

    @property
    def ready(self) -> bool: ...

    def models(self) -> dict[str, ModelInfo]: ...

    def stats(self, model: str) -> dict[str, Any]: ...

    async def embed(self, model: str, texts: list[str]) -> tuple[list[np.ndarray], int]: ...

    async def image_embed(self, model: str, images: list[Any]) -> tuple[list[np.ndarray], int]: ...

    async def rerank(
        self, model: str, query: str, docs: list[str], raw_scores: bool
    ) -> tuple[list[RerankHit], int]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


_import_lock = threading.Lock()


def _import_infinity() -> Any:
    """Import infinity_emb without letting it replace the root logger's handlers.

    Its log_handler clears the root handlers and installs its own at INFO, which makes
    every server access line appear twice; we put the host's logging back as it was.
    The lock makes a second caller wait for a preload in progress (see preload_infinity).
    """
    with _import_lock:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        import infinity_emb

        root.handlers[:] = handlers
        root.setLevel(level)
        return infinity_emb


@functools.cache
def preload_infinity() -> None:
    """Start importing Infinity (torch, transformers: most of a cold start) in a thread, so
    it overlaps the transport's own imports and set-up; the backend's start() joins it.
    Once per process: the RunPod adapter calls it early, then the service's __init__ again."""
    threading.Thread(target=_import_infinity, name="preload-infinity", daemon=True).start()


class InfinityBackend:
    """One Infinity engine per configured model, addressed by served id only."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._engines: dict[str, Any] = {}
        self._info: dict[str, ModelInfo] = {}
        self._array: Any = None
        self._ready = False
        self._failed: dict[str, asyncio.Event] = {}
        self._restarting: set[str] = set()
        self._dead: set[str] = set()

    @property
    def ready(self) -> bool:
        """True once every engine is loaded and running (not restarting, not dead)."""
        return (
            self._ready
            and not self._restarting
            and not self._dead
            and all(engine.is_running for engine in self._engines.values())
        )

    def models(self) -> dict[str, ModelInfo]:
        """Served models by id; fixed once the engines have started."""
        return self._info

    def stats(self, model: str) -> dict[str, Any]:
        """Live queue figures of one engine, for /v1/models."""
        engine = self._engines[model]
        status = engine.overload_status()
        return {
            "queue_fraction": status.queue_fraction,
            "queue_absolute": status.queue_absolute,
            "results_pending": status.results_absolute,
            "batch_size": engine.engine_args.batch_size,
        }

    async def start(self) -> None:
        """Load weights (off the event loop), start batch threads, probe embedding sizes."""
        infinity = _import_infinity()
        began = time.perf_counter()
        planned = await asyncio.to_thread(
            lambda: [self._engine_args(infinity, spec) for spec in self._settings.models]
        )
        backends = {args.served_model_name: backend for args, backend in planned}
        self._array = await asyncio.to_thread(
            infinity.AsyncEngineArray.from_args, [args for args, _ in planned]
        )
        self._engines = dict(self._array.engines_dict)
        loop = asyncio.get_running_loop()
        for model_id, engine in self._engines.items():
            self._failed[model_id] = asyncio.Event()
            self._guard_stages(model_id, engine, loop)
        await self._array.astart()
        created = int(time.time())
        for model_id, engine in self._engines.items():
            capabilities = frozenset(engine.capabilities)
            dims = None
            if "embed" in capabilities:
                vectors, _ = await self.embed(model_id, ["dimension probe"])
                dims = int(vectors[0].shape[-1])
            self._info[model_id] = ModelInfo(
                model_id, capabilities, backends[model_id], dims, created
            )
        self._ready = True
        log.info(
            "engines ready in %.1fs: %s",
            time.perf_counter() - began,
            ", ".join(f"{m} {sorted(i.capabilities)} ({i.backend})" for m, i in self._info.items()),
        )

    def _engine_args(self, infinity: Any, spec: ModelSpec) -> tuple[Any, str]:
        """Infinity's EngineArgs for one model and the backend it will really run on.

        With BACKEND=optimum an embedder is exported to ONNX once (see onnx.plan); models
        ONNX does not cover run on torch, with a log line saying why.
        """
        common = {
            "served_model_name": spec.served_id,
            "batch_size": spec.batch_size,
            "model_warmup": False,
            "bettertransformer": False,
        }
        backend = self._settings.backend
        if backend == "optimum":
            root = onnx.cache_root(self._settings.hf_home)
            decision = onnx.plan(spec.path, spec.served_id, spec.dtype, root)
            if isinstance(decision, onnx.OnnxPlan):
                onnx.patch_infinity_optimum()
                log.info(
                    "model %s: ONNX %s from %s, %s pooling",
                    spec.served_id,
                    decision.precision,
                    decision.folder,
                    decision.pooling,
                )
                args = infinity.EngineArgs(
                    model_name_or_path=str(decision.folder),
                    engine="optimum",
                    device="cpu",  # the onnxruntime package is the CPU build
                    pooling_method=decision.pooling,
                    onnx_disable_optimize=True,
                    **common,
                )
                return args, backend
            log.warning("model %s: %s; serving it with BACKEND=torch", spec.served_id, decision)
            backend = "torch"
        args = infinity.EngineArgs(
            model_name_or_path=spec.path, engine=backend, dtype=spec.dtype, **common
        )
        return args, backend

    async def stop(self) -> None:
        self._ready = False
        if self._array is not None:
            await self._array.astop()

    def _guard_stages(self, model_id: str, engine: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Infinity's batch threads die on the first exception in a stage and leave every
        queued request waiting forever. We note the failure, fail that engine's in-flight
        requests with a 500 and restart its batch threads (the weights stay loaded)."""
        for replica in engine._model_replicas:
            for stage in ("encode_pre", "encode_core", "encode_post"):
                original = getattr(replica, stage)

                def guarded(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                    try:
                        return _original(*args, **kwargs)
                    except Exception:
                        log.exception("engine %s failed on a batch; restarting it", model_id)
                        loop.call_soon_threadsafe(self._on_failure, model_id)
                        raise

                setattr(replica, stage, guarded)

    def _on_failure(self, model_id: str) -> None:
        if model_id in self._restarting:
            return
        self._restarting.add(model_id)
        self._failed[model_id].set()
        asyncio.get_running_loop().create_task(self._restart(model_id))

    async def _restart(self, model_id: str) -> None:
        engine = self._engines[model_id]
        try:
            await engine.astop()
            await engine.astart()
            self._failed[model_id] = asyncio.Event()
            log.warning("engine %s restarted after a failure", model_id)
        except Exception:
            self._dead.add(model_id)
            log.exception("engine %s could not be restarted; reporting not ready", model_id)
        finally:
            self._restarting.discard(model_id)

    async def _run(self, model: str, items: int, call: Any) -> Any:
        """Run one engine call; a batch failure in that engine fails it with a clean 500."""
        if model in self._dead or model in self._restarting:
            raise ServiceError(
                ErrorKind.NOT_READY,
                f"The engine for '{model}' is restarting after a failure. Retry shortly.",
                code="engine_restarting",
                retry_after=1,
            )
        engine = self._engine(model, items)
        failed = self._failed[model]
        work = asyncio.ensure_future(call(engine))
        watch = asyncio.ensure_future(failed.wait())
        await asyncio.wait((work, watch), return_when=asyncio.FIRST_COMPLETED)
        if work.done():
            watch.cancel()
            return work.result()
        work.cancel()
        raise ServiceError(
            ErrorKind.INTERNAL,
            "The model failed while processing this batch; the error was logged and the "
            "engine restarted. Retry the request.",
            code="engine_failure",
        )

    def _engine(self, model: str, items: int) -> Any:
        engine = self._engines[model]
        queued = engine.overload_status().queue_absolute
        if queued + items > self._settings.infinity_queue_size:
            raise ServiceError(
                ErrorKind.OVERLOADED,
                f"The model queue is full ({queued} items queued, limit "
                f"{self._settings.infinity_queue_size}). Retry later.",
                code="queue_full",
                retry_after=1,
            )
        return engine

    async def embed(self, model: str, texts: list[str]) -> tuple[list[np.ndarray], int]:
        return await self._run(model, len(texts), lambda e: e.embed(sentences=texts))

    async def image_embed(self, model: str, images: list[Any]) -> tuple[list[np.ndarray], int]:
        return await self._run(model, len(images), lambda e: e.image_embed(images=images))

    async def rerank(
        self, model: str, query: str, docs: list[str], raw_scores: bool
    ) -> tuple[list[RerankHit], int]:
        results, usage = await self._run(
            model,
            len(docs),
            lambda e: e.rerank(query=query, docs=docs, raw_scores=raw_scores),
        )
        return [RerankHit(int(r.index), float(r.relevance_score)) for r in results], usage
