"""BentoML service: builds settings, core and engines; batchable APIs; mounts the /v1 routes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import bentoml

from handlers.backend import EngineBackend
from handlers.core import Core
from handlers.drain import Drain, DrainMiddleware
from handlers.errors import ServiceError, openai_error_body
from handlers.http import BearerAuthMiddleware, V1App
from handlers.media import ImageFetcher
from handlers.runners import preload_infinity
from handlers.settings import BUNDLED_MODEL_ID, Settings, load_settings

log = logging.getLogger("embedding_service")
# Parsed once per process, at import: the class decorator below needs the server options;
# the service instance uses the same object unless it is handed its own (RunPod adapter).
SETTINGS = load_settings()
v1 = V1App()
v2 = V1App(prefix="/v2")  # /v2/rerank (Cohere v2's shape); one route table with /v1
drain = Drain()
# BentoML logs each request on `bentoml.access`; uvicorn's own access log would repeat it.
logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def _api_key() -> str | None:
    """The key the auth middleware checks: read once from the running service's settings."""
    key = v1.core.settings.api_key if v1.core else None
    return key.get_secret_value() if key else None


@bentoml.service(
    name="embedding-service",
    traffic={"timeout": 300, "max_concurrency": 4096},
    workers=1,
    # One access line per request costs about a quarter of the throughput on small
    # requests (BENCHMARKS.md): off unless ACCESS_LOG=true. Prometheus metrics likewise.
    logging={"access": {"enabled": SETTINGS.access_log}},
    metrics={"enabled": SETTINGS.prometheus_metrics},
)
@bentoml.asgi_app(v1, path="/v1")
@bentoml.asgi_app(v2, path="/v2")
class EmbeddingService:
    """Embeddings, image embeddings and rerank; one scheduler per model over its engine."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or SETTINGS
        if self.settings.backend != "optimum":
            preload_infinity()  # overlaps the server's own start-up; loading waits for it
        if self.settings.uses_bundled_model:
            log.info("MODEL_NAMES is unset: serving the bundled %s offline", BUNDLED_MODEL_ID)
        self.core = Core(self.settings, EngineBackend(self.settings), ImageFetcher(self.settings))
        v1.core = v2.core = self.core

    @bentoml.on_startup
    async def start(self) -> None:
        await self.core.start()

    @bentoml.on_startup
    async def drain_on_sigterm(self) -> None:
        """HTTP server only (the RunPod worker calls start() itself, from another thread)."""
        drain.install(self.settings.shutdown_drain_seconds, self.core.backend.close_admission)

    @bentoml.on_shutdown
    async def stop(self) -> None:
        await self.core.stop()

    def __is_ready__(self) -> bool:
        return self.core.ready and not drain.draining

    def __is_alive__(self) -> bool:
        """/livez: false once a model is dead (a batching thread died, or a long stall)."""
        return self.core.alive

    async def _many(self, route: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def one(body: dict[str, Any]) -> dict[str, Any]:
            try:
                return await self.core.dispatch(route, body)
            except ServiceError as error:
                return openai_error_body(error)

        return list(await asyncio.gather(*(one(body) for body in bodies)))

    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=10_000)
    async def embeddings(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batchable: each item is an /v1/embeddings body; each result its reply or error."""
        return await self._many("/v1/embeddings", requests)

    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=10_000)
    async def rerank(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batchable: each item is an /v1/rerank body; each result its reply or error."""
        return await self._many("/v1/rerank", requests)

    @bentoml.api
    async def models(self) -> dict[str, Any]:
        """The /v1/models body."""
        return await self.core.dispatch("/v1/models")


EmbeddingService.add_asgi_middleware(BearerAuthMiddleware, key=_api_key)
EmbeddingService.add_asgi_middleware(DrainMiddleware, drain=drain)


def create_service(settings: Settings) -> EmbeddingService:
    """A plain service instance outside the BentoML runtime (the RunPod worker's way in)."""
    return EmbeddingService.inner(settings)
