"""The request core shared by every transport: routes a request to its operation (the table,
handlers.core.table), with what every operation shares: model lookup and size limits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from handlers.core.operations import Operation
from handlers.core.table import OPERATIONS
from handlers.core.token_arrays import cl100k_decoder
from handlers.engine.seam import Backend
from handlers.errors import At, ErrorKind, ServiceError
from handlers.model_info import ModelInfo
from handlers.settings import Settings

__all__ = ["REPLY_HEADERS", "Core", "MediaLoader"]

log = logging.getLogger(__name__)

# reply body field -> the HTTP response header that repeats it
REPLY_HEADERS = {"fingerprint": "x-embedding-fingerprint"}
# capabilities named by their modality when a model lacks them ('image', 'audio')
MEDIA = frozenset({"image_embed", "audio_embed"})


class MediaLoader(Protocol):
    """Turns image references into decoded images and audio references into clips
    (handlers.media.audio.Clip); errors name the item (`input[i]: ...`)."""

    async def load(self, items: list[tuple[int, str]]) -> list[Any]: ...

    async def load_audio(
        self, items: list[tuple[int, str]], seconds: float | None = None
    ) -> list[Any]: ...

    @staticmethod
    def looks_like_image(item: str) -> bool: ...

    @staticmethod
    def looks_like_audio(item: str) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Core:
    """Dispatch, by path (`routes`), to every operation of `operations` (the service's table,
    handlers.core.table, unless given); what the operations share."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        media: MediaLoader,
        operations: Sequence[Operation] | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.media = media
        self.operations = tuple(OPERATIONS if operations is None else operations)
        self.routes = {path: op for op in self.operations for path in op.paths}
        token_arrays = cl100k_decoder() if settings.token_arrays == "cl100k" else None
        # what the request validators use
        self.context = {"token_arrays": token_arrays, "max_token_ids": settings.max_total_chars}

    @property
    def ready(self) -> bool:
        """Every model loaded and making progress (readiness)."""
        return self.backend.ready

    @property
    def alive(self) -> bool:
        """No model dead (liveness): a dead one needs a new process."""
        return self.backend.alive

    async def start(self) -> None:
        await self.media.start()
        await self.backend.start()

    async def stop(self) -> None:
        try:
            await self.backend.stop()
        finally:
            await self.media.stop()

    async def dispatch(self, route: str, body: Any = None) -> Any:
        """Run one request for `route` (a path of `routes`).

        Raises:
            ServiceError: for every failure; unexpected exceptions become INTERNAL, logged
                with their traceback, never shown to the client.
        """
        operation = self.routes.get(route)
        if operation is None:
            raise ServiceError(
                ErrorKind.NOT_FOUND,
                f"Unknown route {route!r}. Supported: {', '.join(self.routes)}.",
                param="openai_route",
            )
        if not self.backend.models():
            raise ServiceError(ErrorKind.NOT_READY, "The models are still loading. Retry shortly.")
        try:
            return await operation.handler(self, body)
        except ServiceError:
            raise
        except Exception:
            log.exception("unexpected failure serving %s", route)
            raise ServiceError(
                ErrorKind.INTERNAL,
                "The model failed to process this request. The error was logged.",
                code="internal_error",
            ) from None

    def model(self, model: str, *capabilities: str) -> ModelInfo:
        """The served model `model`, which must have `capabilities`.

        Raises:
            ServiceError: NOT_FOUND when it is not served; INVALID when it lacks one.
        """
        infos = self.backend.models()
        info = infos.get(model)
        if info is None:
            raise ServiceError(
                ErrorKind.NOT_FOUND,
                f"Model '{model}' is not deployed. Available deployments: {', '.join(infos)}.",
                param="model",
                code="model_not_found",
            )
        for capability in capabilities:
            if capability not in info.capabilities:
                wanted = capability.removesuffix("_embed") if capability in MEDIA else capability
                raise ServiceError(
                    ErrorKind.INVALID,
                    f"Model '{model}' does not expose the '{wanted}' capability. "
                    f"Detected capabilities: {', '.join(sorted(info.capabilities))}.",
                    param="model",
                    code="model_capability",
                )
        return info

    def classifier(self, model: Any) -> bool:
        """Whether `model` names a served sequence classifier that gives no embeddings (a
        RunPod native `input` job for it classifies)."""
        info = self.backend.models().get(model) if isinstance(model, str) else None
        return info is not None and "classify" in info.capabilities and not info.outputs

    def check_size(self, param: str, count: int, texts: list[str]) -> None:
        """413 past MAX_CLIENT_BATCH_SIZE items or MAX_TOTAL_CHARS characters of text."""
        limit = self.settings.max_client_batch_size
        if count > limit:
            raise ServiceError(
                ErrorKind.TOO_LARGE,
                At(
                    (param,),
                    f" has {count} items; at most {limit} are allowed per request "
                    "(MAX_CLIENT_BATCH_SIZE).",
                ),
                param=param,
                code="too_many_items",
            )
        chars, most = sum(map(len, texts)), self.settings.max_total_chars
        if chars > most:
            raise ServiceError(
                ErrorKind.TOO_LARGE,
                f"The request holds {chars} characters of text; at most {most} are allowed "
                "(MAX_TOTAL_CHARS).",
                param=param,
                code="too_many_characters",
            )

    def first(self, named: str | None, capability: str, *more: str) -> ModelInfo:
        """The model a route without a model field answers for (TEI's): `named` when the
        body names one, else the first served model (MODEL_NAMES order) with `capability`
        or one of `more`.

        Raises:
            ServiceError: as `model`; INVALID (model_capability) when none can.
        """
        able = {capability, *more}
        infos = list(self.backend.models().values())
        info: ModelInfo = (
            self.model(named)
            if named is not None
            else next((i for i in infos if able & i.capabilities), infos[0])
        )
        if not able & info.capabilities:
            wanted = " or ".join(sorted(able))
            raise ServiceError(
                ErrorKind.INVALID,
                f"Model '{info.id}' cannot run this route (it needs {wanted}; its "
                f"capabilities: {', '.join(sorted(info.capabilities))}).",
                param="model",
                code="model_capability",
            )
        return info

    def only(self, capability: str) -> str:
        """The one served model with `capability`, for a request that names none.

        Raises:
            ServiceError: INVALID when the server does not serve exactly one (the message
                lists them).
        """
        ids = [i.id for i in self.backend.models().values() if capability in i.capabilities]
        if len(ids) == 1:
            return ids[0]
        kinds = {"rerank": "rerankers", "embed": "embedding models", "classify": "classifiers"}
        kind = kinds[capability]
        raise ServiceError(
            ErrorKind.INVALID,
            f"model: Field required (this server serves {len(ids)} {kind}: "
            f"{', '.join(ids) or 'none'}).",
            param="model",
        )
