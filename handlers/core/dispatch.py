"""The request core shared by every transport: validate once, call the backend, shape replies."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from handlers.core import cohere, rerank
from handlers.core.cards import card
from handlers.core.cohere import CohereEmbedRequest
from handlers.core.operations import Operation
from handlers.core.other_apis import cohere_names
from handlers.core.parsing import parse_body
from handlers.core.prompts import prompt_for
from handlers.core.replies import (
    CohereEmbedResponse,
    EmbeddingsResponse,
    ModelList,
    RerankResponse,
    RerankV2Response,
    TokenizeResponse,
)
from handlers.core.schemas import EmbeddingsRequest, RerankRequest, TokenizeRequest
from handlers.core.token_arrays import cl100k_decoder
from handlers.core.vectors import encode
from handlers.engine.backend import Backend
from handlers.engine.stages import EmbedKey
from handlers.engine.text_tokenizer import tokenize_data
from handlers.errors import ErrorKind, ServiceError
from handlers.model_info import ModelInfo
from handlers.settings import Settings

__all__ = ["OPERATIONS", "REPLY_HEADERS", "Core", "ImageLoader"]

log = logging.getLogger(__name__)

# reply body field -> the HTTP response header that repeats it
REPLY_HEADERS = {"fingerprint": "x-embedding-fingerprint"}


class ImageLoader(Protocol):
    """Turns image references into decoded images; errors name the item (`input[i]: ...`)."""

    async def load(self, items: list[tuple[int, str]]) -> list[Any]: ...

    @staticmethod
    def looks_like_image(item: str) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def _documents(req: RerankRequest, as_sent: bool = False) -> list[Any] | None:
    """The documents a rerank reply carries (return_documents): a string one as Cohere v1,
    Jina and vLLM reply, `{"text": ...}` (`as_sent`, Infinity's reply: the string); an
    object one as sent."""
    if not req.return_documents:
        return None
    if as_sent:
        return req.documents
    return [{"text": doc} if isinstance(doc, str) else doc for doc in req.documents]


def _meta() -> dict[str, Any]:
    return {"id": f"infinity-{uuid.uuid4()}", "created": int(time.time())}


class Core:
    """Validation and dispatch for every operation of `operations` (OPERATIONS unless
    given), by path: `routes`."""

    def __init__(
        self,
        settings: Settings,
        backend: Backend,
        images: ImageLoader,
        operations: Sequence[Operation] | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.images = images
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
        await self.images.start()
        await self.backend.start()

    async def stop(self) -> None:
        try:
            await self.backend.stop()
        finally:
            await self.images.stop()

    async def dispatch(self, route: str, body: Any = None) -> dict[str, Any]:
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

    def _model(self, model: str, *capabilities: str) -> ModelInfo:
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
                wanted = "image" if capability == "image_embed" else capability
                raise ServiceError(
                    ErrorKind.INVALID,
                    f"Model '{model}' does not expose the '{wanted}' capability. "
                    f"Detected capabilities: {', '.join(sorted(info.capabilities))}.",
                    param="model",
                    code="model_capability",
                )
        return info

    def _check_size(self, param: str, count: int, texts: list[str]) -> None:
        """413 past MAX_CLIENT_BATCH_SIZE items or MAX_TOTAL_CHARS characters of text."""
        limit = self.settings.max_client_batch_size
        if count > limit:
            raise ServiceError(
                ErrorKind.TOO_LARGE,
                f"{param} has {count} items; at most {limit} are allowed per request "
                "(MAX_CLIENT_BATCH_SIZE).",
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

    async def models(self, _body: Any = None) -> dict[str, Any]:
        infos = self.backend.models().values()
        return {"object": "list", "data": [card(i, self.backend.stats(i.id)) for i in infos]}

    async def _check_lengths(
        self, info: ModelInfo, texts: list[tuple[int, str]]
    ) -> tuple[list[Any], list[int]]:
        """truncate=false: a 413 naming the first text past the context length, counted
        untruncated with special tokens (off the event loop), before any admission. Returns
        the texts as the model reads them (its Tokens: not tokenised again) and their
        counts, which the scheduler then batches by.

        Raises:
            ServiceError: TOO_LARGE for such a text; INVALID when the model cannot count.
        """
        limit = info.max_input_tokens
        if limit is None:
            raise ServiceError(
                ErrorKind.INVALID,
                f"Model '{info.id}' does not report its context length: truncate=false is "
                "not available for it.",
                param="truncate",
            )
        if not texts:
            return [], []
        read, counts = await self.backend.count_tokens(info.id, [text for _, text in texts])
        for (index, _), count in zip(texts, counts, strict=True):
            if count > limit:
                raise ServiceError(
                    ErrorKind.TOO_LARGE,
                    f"input[{index}] has {count} tokens; the model's context length is "
                    f"{limit} tokens and truncate is false.",
                    param="input",
                    code="input_too_long",
                )
        return read, counts

    def _is_image(self, req: EmbeddingsRequest) -> list[bool]:
        """Each input's modality: its object's, else the request's (auto: by its form)."""
        flags = []
        for item, kind in zip(req.input, req.kinds, strict=True):
            if kind is not None:
                flags.append(kind == "image")
            elif req.modality == "auto":
                flags.append(self.images.looks_like_image(item))
            else:
                flags.append(req.modality == "image")
        return flags

    async def embeddings(self, body: Any) -> dict[str, Any]:
        req: EmbeddingsRequest = parse_body(EmbeddingsRequest, body, self.context)
        info, vectors, tokens = await self._embed(req)
        return self._embeddings_body(req, info, vectors, tokens)

    async def _embed(self, req: EmbeddingsRequest) -> tuple[ModelInfo, list[np.ndarray], int]:
        """The model's vectors of a validated request, in input order, and its tokens."""
        is_image = self._is_image(req)
        texts = [item for item, flag in zip(req.input, is_image, strict=True) if not flag]
        self._check_size("input", len(req.input), texts)
        needed = {"embed" if not flag else "image_embed" for flag in is_image} or {"embed"}
        info = self._model(req.model, *sorted(needed))
        if req.dimensions is not None and info.dimensions and req.dimensions > info.dimensions:
            raise ServiceError(
                ErrorKind.INVALID,
                f"dimensions={req.dimensions} exceeds the model's embedding size "
                f"{info.dimensions}.",
                param="dimensions",
            )
        prompt, adapter = prompt_for(req, info)
        items: list[Any] = [
            item if flag else prompt + item for item, flag in zip(req.input, is_image, strict=True)
        ]
        if not items:
            return info, [], 0
        lengths = None
        if not req.truncate:
            flagged = zip(items, is_image, strict=True)
            texts_at = [(i, t) for i, (t, f) in enumerate(flagged) if not f]
            read, counts = await self._check_lengths(info, texts_at)
            for (i, _), tokens in zip(texts_at, read, strict=True):
                items[i] = tokens
            counted = iter(counts)
            lengths = [1 if flag else next(counted) for flag in is_image]  # an image: 1
        key = EmbedKey(req.truncation_direction, req.normalize, adapter)
        async with self.backend.admit(req.model, len(items)):
            image_idx = [i for i, flag in enumerate(is_image) if flag]
            if image_idx:
                images = await self.images.load([(i, items[i]) for i in image_idx])
                for i, image in zip(image_idx, images, strict=True):
                    items[i] = image
            vectors, tokens = await self.backend.embed(req.model, items, key, lengths)
        return info, vectors, tokens

    @staticmethod
    def _embeddings_body(
        req: EmbeddingsRequest, info: ModelInfo, vectors: list[np.ndarray], tokens: int
    ) -> dict[str, Any]:
        data = []
        if vectors:
            data = encode(
                vectors,
                encoding=req.encoding_format,
                dimensions=req.dimensions,
                normalize=req.normalize,
                embedding_type=req.embedding_type,
            )
        return {
            "object": "list",
            "model": req.model,
            "data": [
                {"object": "embedding", "embedding": emb, "index": i} for i, emb in enumerate(data)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            **_meta(),
            "fingerprint": info.fingerprint,
        }

    async def embed_v1(self, body: Any) -> dict[str, Any]:
        return await self._cohere_embed(body, "1")

    async def embed_v2(self, body: Any) -> dict[str, Any]:
        return await self._cohere_embed(body, "2")

    async def _cohere_embed(self, body: Any, version: str) -> dict[str, Any]:
        if isinstance(body, dict) and body.get("model") is None:  # Cohere's SDK may omit it
            body = {**body, "model": self._only("embed")}
        req: CohereEmbedRequest = parse_body(CohereEmbedRequest, body, self.context)
        try:
            _, vectors, tokens = await self._embed(req.embeddings)
        except ServiceError as error:  # named as the client sent them: texts[3], not input[3]
            raise cohere_names(error, req.items_field) from None
        return cohere.embed_reply(req, vectors, tokens, version, _meta()["id"])

    def _reranker(self, model: str | None) -> str:
        """The reranker a request names; when it names none, the only one served.

        Raises:
            ServiceError: as _model; INVALID when no model is named and the server does
                not serve exactly one reranker (the message lists them).
        """
        if model is not None:
            self._model(model, "rerank")
            return model
        return self._only("rerank")

    def _only(self, capability: str) -> str:
        """The one served model with `capability`, for a request that names none.

        Raises:
            ServiceError: INVALID when the server does not serve exactly one (the message
                lists them).
        """
        ids = [i.id for i in self.backend.models().values() if capability in i.capabilities]
        if len(ids) == 1:
            return ids[0]
        kind = {"rerank": "rerankers", "embed": "embedding models"}[capability]
        raise ServiceError(
            ErrorKind.INVALID,
            f"model: Field required (this server serves {len(ids)} {kind}: "
            f"{', '.join(ids) or 'none'}).",
            param="model",
        )

    async def _rank(self, body: Any) -> tuple[RerankRequest, str, list[float], int]:
        """Validate a rerank body and score its documents, each by its best window."""
        req: RerankRequest = parse_body(RerankRequest, body)
        texts = req.texts
        self._check_size("documents", len(texts), [req.query, *texts])
        model = self._reranker(req.model)
        if not texts:
            return req, model, [], 0
        windows = await asyncio.to_thread(
            rerank.plan_windows,
            self.backend.tokenizer(model),
            req.query,
            texts,
            req.max_tokens_per_doc,
            req.max_chunks_per_doc,
        )
        async with self.backend.admit(model, len(windows.items)):
            scores, tokens = await self.backend.rerank(
                model, windows.query, windows.items, windows.lengths
            )
        return req, model, windows.best(scores, len(texts)), tokens

    async def rerank(self, body: Any) -> dict[str, Any]:
        """Cohere v1's, Jina's and vLLM's reply: a string document as {"text": ...}."""
        req, model, scores, tokens = await self._rank(body)
        return self._rerank_body(req, model, scores, tokens, _documents(req))

    async def rerank_as_sent(self, body: Any) -> dict[str, Any]:
        """Infinity's reply (its /rerank; RunPod's native jobs): documents as sent."""
        req, model, scores, tokens = await self._rank(body)
        return self._rerank_body(req, model, scores, tokens, _documents(req, as_sent=True))

    @staticmethod
    def _rerank_body(
        req: RerankRequest, model: str, scores: list[float], tokens: int, docs: list[Any] | None
    ) -> dict[str, Any]:
        """The rerank reply; the same results also as `data`, for Voyage's client."""
        results = rerank.ranked_results(scores, req.raw_scores, req.top_n, docs)
        return {
            "object": "rerank",
            "model": model,
            "results": results,
            "data": results,
            "usage": {"prompt_tokens": int(tokens), "total_tokens": int(tokens)},
            **_meta(),
        }

    async def rerank_v2(self, body: Any) -> dict[str, Any]:
        """Cohere v2's reply: tokens in `meta` and `usage`."""
        req, model, scores, tokens = await self._rank(body)
        return {
            "id": _meta()["id"],
            "model": model,
            "results": rerank.ranked_results(scores, req.raw_scores, req.top_n, _documents(req)),
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
            "usage": {"prompt_tokens": int(tokens), "total_tokens": int(tokens)},
        }

    async def tokenize(self, body: Any) -> dict[str, Any]:
        req: TokenizeRequest = parse_body(TokenizeRequest, body, self.context)
        self._check_size("input", len(req.input), req.input)
        self._model(req.model)
        tokenizer = self.backend.tokenizer(req.model)
        if tokenizer is None:
            raise ServiceError(
                ErrorKind.INVALID,
                f"Model '{req.model}' has no fast tokenizer; /v1/tokenize is not available for it.",
                param="model",
                code="model_capability",
            )
        encodings = await asyncio.to_thread(tokenizer.encode, req.input, req.add_special_tokens)
        return {"object": "list", "model": req.model, "data": tokenize_data(encodings)}


OPERATIONS = (
    Operation(
        "/v1/models",
        "GET",
        Core.models,
        "List served models with their capabilities.",
        ModelList,
        aliases=("/models",),
    ),
    Operation(
        "/v1/embeddings",
        "POST",
        Core.embeddings,
        "Create embeddings for texts or images (OpenAI-compatible; Cohere's, Voyage's and "
        "Jina's fields too).",
        EmbeddingsResponse,
        EmbeddingsRequest,
        "embed",
        aliases=("/embeddings",),
    ),
    Operation(
        "/v1/rerank",
        "POST",
        Core.rerank,
        "Score documents against a query, highest first (Cohere v1's, Jina's and vLLM's reply: "
        "a string document as {'text': ...}).",
        RerankResponse,
        RerankRequest,
        "rerank",
    ),
    Operation(
        "/rerank",
        "POST",
        Core.rerank_as_sent,
        "Score documents against a query, highest first (Infinity's reply: documents as sent).",
        RerankResponse,
        RerankRequest,
        "rerank",
    ),
    Operation(
        "/v1/tokenize",
        "POST",
        Core.tokenize,
        "Token ids, token strings and character offsets of texts, with their counts "
        "(never truncated).",
        TokenizeResponse,
        TokenizeRequest,
    ),
    Operation(
        "/v1/embed",
        "POST",
        Core.embed_v1,
        "Create embeddings in Cohere v1's shape (cohere.Client().embed).",
        CohereEmbedResponse,
        CohereEmbedRequest,
        "embed",
    ),
    Operation(
        "/v2/embed",
        "POST",
        Core.embed_v2,
        "Create embeddings in Cohere v2's shape (cohere.ClientV2().embed): texts, images or "
        "inputs; several embedding types at once.",
        CohereEmbedResponse,
        CohereEmbedRequest,
        "embed",
    ),
    Operation(
        "/v2/rerank",
        "POST",
        Core.rerank_v2,
        "Score documents against a query, highest first (Cohere v2's reply shape).",
        RerankV2Response,
        RerankRequest,
        "rerank",
    ),
)
