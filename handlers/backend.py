"""Inference backends: the Backend protocol and InfinityBackend, the only infinity_emb importer."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .errors import ErrorKind, ServiceError
from .settings import Settings

__all__ = ["Backend", "InfinityBackend", "ModelInfo", "RerankHit"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What the core needs to know about one served model."""

    id: str
    capabilities: frozenset[str]
    backend: str
    dimensions: int | None
    created: int
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RerankHit:
    index: int
    score: float


class Backend(Protocol):
    """The seam between the request core and an inference engine."""

    @property
    def ready(self) -> bool: ...

    def models(self) -> list[ModelInfo]: ...

    async def embed(self, model: str, texts: list[str]) -> tuple[list[np.ndarray], int]: ...

    async def image_embed(self, model: str, images: list[Any]) -> tuple[list[np.ndarray], int]: ...

    async def rerank(
        self, model: str, query: str, docs: list[str], raw_scores: bool
    ) -> tuple[list[RerankHit], int]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _import_infinity() -> Any:
    """Import infinity_emb without letting it replace the root logger's handlers.

    Its log_handler clears the root handlers and installs its own at INFO, which makes
    every server access line appear twice; we put the host's logging back as it was.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    import infinity_emb

    root.handlers[:] = handlers
    root.setLevel(level)
    return infinity_emb


class InfinityBackend:
    """One Infinity engine per configured model, addressed by served id only."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._engines: dict[str, Any] = {}
        self._info: dict[str, ModelInfo] = {}
        self._array: Any = None
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready and all(engine.is_running for engine in self._engines.values())

    def models(self) -> list[ModelInfo]:
        out = []
        for model_id, info in self._info.items():
            status = self._engines[model_id].overload_status()
            stats = {
                "queue_fraction": status.queue_fraction,
                "queue_absolute": status.queue_absolute,
                "results_pending": status.results_absolute,
                "batch_size": self._engines[model_id].engine_args.batch_size,
            }
            out.append(ModelInfo(**{**info.__dict__, "stats": stats}))
        return out

    async def start(self) -> None:
        """Load weights (off the event loop), start batch threads, probe embedding sizes."""
        infinity = _import_infinity()
        settings = self._settings
        args = [
            infinity.EngineArgs(
                model_name_or_path=spec.path,
                served_model_name=spec.served_id,
                engine=settings.backend,
                batch_size=spec.batch_size,
                dtype=spec.dtype,
                model_warmup=False,
                bettertransformer=False,
            )
            for spec in settings.models
        ]
        began = time.perf_counter()
        self._array = await asyncio.to_thread(infinity.AsyncEngineArray.from_args, args)
        self._engines = dict(self._array.engines_dict)
        await self._array.astart()
        created = int(time.time())
        for model_id, engine in self._engines.items():
            capabilities = frozenset(engine.capabilities)
            dims = None
            if "embed" in capabilities:
                vectors, _ = await engine.embed(sentences=["dimension probe"])
                dims = int(vectors[0].shape[-1])
            self._info[model_id] = ModelInfo(
                model_id, capabilities, settings.backend, dims, created
            )
        self._ready = True
        log.info(
            "engines ready in %.1fs: %s",
            time.perf_counter() - began,
            ", ".join(f"{m} {sorted(i.capabilities)}" for m, i in self._info.items()),
        )

    async def stop(self) -> None:
        self._ready = False
        if self._array is not None:
            await self._array.astop()

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
        return await self._engine(model, len(texts)).embed(sentences=texts)

    async def image_embed(self, model: str, images: list[Any]) -> tuple[list[np.ndarray], int]:
        return await self._engine(model, len(images)).image_embed(images=images)

    async def rerank(
        self, model: str, query: str, docs: list[str], raw_scores: bool
    ) -> tuple[list[RerankHit], int]:
        results, usage = await self._engine(model, len(docs)).rerank(
            query=query, docs=docs, raw_scores=raw_scores
        )
        return [RerankHit(int(r.index), float(r.relevance_score)) for r in results], usage
