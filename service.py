"""BentoML service: builds settings, core and engines; batchable APIs; mounts the /v1 routes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import bentoml

from handlers.api.bentoml_server import exit_nonzero_after_a_worker_failed, stop_server
from handlers.api.drain import Drain, DrainMiddleware
from handlers.api.error_bodies import OpenAIErrorBodies
from handlers.api.http import BearerAuthMiddleware, RootRoutes, V1App
from handlers.api.metrics import MetricsRoute, SchedulerMetrics
from handlers.api.page import ApiPage
from handlers.api.wire import plain
from handlers.compose import build_core
from handlers.core.dispatch import Core
from handlers.core.operations import mount_prefixes, root_paths
from handlers.core.table import OPERATIONS
from handlers.engine.loading import ModelLoadError
from handlers.errors import ErrorKind, ServiceError, openai_error_body
from handlers.settings import Settings, load_settings, settings_or_exit
from handlers.settings_error import SettingsError
from handlers.startup import failure_line

log = logging.getLogger("embedding_service")
# The class decorator needs the server options at import: where to listen
# (INFINITY_HOST, INFINITY_PORT), access log, metrics. A bad value of any variable exits
# here with its one line. Everything else is read by the instance (load_settings() parses
# the environment once per process, so both see the same object).
SERVER = settings_or_exit()
# A worker whose models cannot load stops this server instead of being respawned forever.
exit_nonzero_after_a_worker_failed()


def _core() -> Core | None:
    """The running instance's core (None before BentoML binds one): what the apps serve."""
    service = _running()
    return service.core if service is not None else None


# One app per prefix of the operation table (/v1, /v2), mounted below; BentoML mounts
# apps when the class is defined. The root paths (/embeddings, /rerank, /models: Infinity's
# and vLLM's) are served by ROOT through the RootRoutes middleware; BentoML's own APIs
# (batchable) live under BATCH, where they collide with none.
APPS = [V1App(prefix, _core) for prefix in mount_prefixes(OPERATIONS)]
ROOT = V1App("", _core)
ROOT_PATHS = root_paths(OPERATIONS)
BATCH = "/batch"
OWN_PREFIXES = tuple(app.prefix + "/" for app in APPS)  # our apps: OpenAI error bodies
# What is left out of tracing unless TRACE_REQUESTS=true: the API routes.
# ("/" would exclude every URL: the exclusions are patterns searched in it)
UNTRACED = (*OWN_PREFIXES, *(p for p in ROOT_PATHS if p != "/"), BATCH + "/")
# BentoML logs each request on `bentoml.access`; uvicorn's own access log would repeat it.
logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


class _Serving:
    """The instance this process serves, bound by its constructor (BentoML constructs one
    per worker): the apps and middlewares read it on every request, with no lookup."""

    instance: EmbeddingService | None = None


def _running() -> EmbeddingService | None:
    """The instance this server runs, or None before it is constructed."""
    return _Serving.instance


def _api_key() -> str | None:
    """The key the auth middleware checks (None: auth off), from the running instance.

    Raises:
        ServiceError: NOT_READY while no instance is bound (authentication fails closed).
    """
    service = _running()
    if service is None:
        raise ServiceError(
            ErrorKind.NOT_READY,
            "The service has not started yet: no request is accepted before it has.",
            code="not_ready",
        )
    key = service.settings.api_key
    return key.get_secret_value() if key else None


def _metrics_text() -> bytes:
    """Our per-model series, from the running instance (none before it starts)."""
    service = _running()
    return service.metrics.text() if service is not None else b""


def _draining() -> bool:
    service = _running()
    return service is not None and service.drain.draining


@bentoml.service(
    name="embedding-service",
    traffic={"timeout": 300, "max_concurrency": 4096},
    workers=1,
    # `bentoml serve .` binds here too; keep-alive and graceful shutdown are command-line
    # flags only in BentoML 1.4: `make serve` and the image's command pass them.
    http={"host": SERVER.infinity_host, "port": SERVER.infinity_port},
    # One access line per request costs about a quarter of the throughput on small
    # requests (BENCHMARKS.md): off unless ACCESS_LOG=true. BentoML's per-request Prometheus
    # metrics likewise (PROMETHEUS_METRICS); our per-model series stay (handlers/metrics.py).
    logging={"access": {"enabled": SERVER.access_log}},
    metrics={"enabled": SERVER.prometheus_metrics},
    # BentoML records an OpenTelemetry span for every request and every receive/send of
    # it, exporter or not: about a third of the event loop's time on one-sentence
    # requests. The API routes are left out unless TRACE_REQUESTS=true.
    tracing={} if SERVER.trace_requests else {"excluded_urls": list(UNTRACED)},
)
class EmbeddingService:
    """Embeddings, image embeddings and rerank; one scheduler per model over its engine."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.drain = Drain()
        self.core = build_core(self.settings)
        self.metrics = SchedulerMetrics(self.core.backend.schedulers)
        _Serving.instance = self

    @bentoml.on_startup
    async def start(self) -> None:
        """Load the models. One that cannot load (or a setting only checkable then) stops
        the whole server with one line and a non-zero exit (handlers.api.bentoml_server).

        Raises:
            ModelLoadError, SettingsError: outside a BentoML worker (in-process use).
        """
        try:
            await self.core.start()
        except (ModelLoadError, SettingsError) as exc:
            stop_server(failure_line(exc))
            raise

    @bentoml.on_startup
    async def drain_on_sigterm(self) -> None:
        """HTTP server only (the RunPod worker calls start() itself, from another thread)."""
        self.drain.install(self.settings.shutdown_drain_seconds, self.core.backend.close_admission)

    @bentoml.on_shutdown
    async def stop(self) -> None:
        await self.core.stop()

    def __is_ready__(self) -> bool:
        return self.core.ready and not self.drain.draining

    def __is_alive__(self) -> bool:
        """/livez: false once a model is dead (a batching thread died, or a long stall)."""
        return self.core.alive

    async def __metrics__(self, content: str) -> str:
        """/metrics: BentoML's series, then ours (per model, read at scrape time)."""
        return content + self.metrics.text().decode()

    async def _many(self, route: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async def one(body: dict[str, Any]) -> dict[str, Any]:
            try:
                return plain(await self.core.dispatch(route, body))
            except ServiceError as error:
                return openai_error_body(error)

        return list(await asyncio.gather(*(one(body) for body in bodies)))

    @bentoml.api(
        route=BATCH + "/embeddings", batchable=True, max_batch_size=256, max_latency_ms=10_000
    )
    async def embeddings(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batchable: each item is an /v1/embeddings body; each result its reply or error."""
        return await self._many("/v1/embeddings", requests)

    @bentoml.api(route=BATCH + "/rerank", batchable=True, max_batch_size=256, max_latency_ms=10_000)
    async def rerank(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Batchable: each item is an /v1/rerank body; each result its reply or error."""
        return await self._many("/v1/rerank", requests)

    @bentoml.api(route=BATCH + "/models")
    async def models(self) -> dict[str, Any]:
        """The /v1/models body."""
        return await self.core.dispatch("/v1/models")


# @bentoml.service makes the class a bentoml Service, whose methods the type checker does not
# see on the class it decorates.
SERVICE: Any = EmbeddingService
for _app in APPS:
    SERVICE.mount_asgi_app(_app, path=_app.prefix)
# Outermost first: every error body OpenAI-shaped, the page at /, auth, drain, root paths.
SERVICE.add_asgi_middleware(OpenAIErrorBodies, prefixes=OWN_PREFIXES, paths=frozenset(ROOT_PATHS))
SERVICE.add_asgi_middleware(ApiPage)
SERVICE.add_asgi_middleware(BearerAuthMiddleware, key=_api_key)
SERVICE.add_asgi_middleware(DrainMiddleware, draining=_draining)
SERVICE.add_asgi_middleware(RootRoutes, root=ROOT, paths=frozenset(ROOT_PATHS))
if not SERVER.prometheus_metrics:  # BentoML then has no /metrics route: ours stays
    SERVICE.add_asgi_middleware(MetricsRoute, metrics=_metrics_text)
