"""POST /v1/rerank, /rerank (Infinity's) and /v2/rerank (Cohere v2's): documents scored
against a query, each by its best window, highest first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.core import rerank as ranking
from handlers.core.operations import Operation
from handlers.core.parsing import parse_body
from handlers.core.replies import RerankResponse, RerankV2Response, reply_meta
from handlers.core.rerank import RerankRequest

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["RERANK", "RERANK_AS_SENT", "RERANK_V2"]

EXAMPLE = {
    "query": "What is the capital of France?",
    "documents": ["Paris is the capital of France.", "Berlin is the capital of Germany."],
}


def _documents(req: RerankRequest, as_sent: bool = False) -> list[Any] | None:
    """The documents a rerank reply carries (return_documents): a string one as Cohere v1,
    Jina and vLLM reply, `{"text": ...}` (`as_sent`, Infinity's reply: the string); an
    object one as sent."""
    if not req.return_documents:
        return None
    if as_sent:
        return req.documents
    return [{"text": doc} if isinstance(doc, str) else doc for doc in req.documents]


async def _rank(core: Core, body: Any) -> tuple[RerankRequest, str, list[float], int]:
    """Validate a rerank body and score its documents, each by its best window; a request
    that names no model goes to the only reranker served."""
    req: RerankRequest = parse_body(RerankRequest, body)
    texts = req.texts
    core.check_size("documents", len(texts), [req.query, *texts])
    if req.model is not None:
        core.model(req.model, "rerank")
    model = req.model if req.model is not None else core.only("rerank")
    if not texts:
        return req, model, [], 0
    windows = await core.backend.windows(
        model, req.query, texts, req.max_tokens_per_doc, req.max_chunks_per_doc
    )
    async with core.backend.admit(model, len(windows.items)) as ticket:
        scores, tokens = await core.backend.rerank(ticket, windows)
    return req, model, windows.best(scores, len(texts)), tokens


def _body(
    req: RerankRequest, model: str, scores: list[float], tokens: int, docs: list[Any] | None
) -> dict[str, Any]:
    """The rerank reply; the same results also as `data`, for Voyage's client."""
    results = ranking.ranked_results(scores, req.raw_scores, req.top_n, docs)
    return {
        "object": "rerank",
        "model": model,
        "results": results,
        "data": results,
        "usage": {"prompt_tokens": int(tokens), "total_tokens": int(tokens)},
        **reply_meta(),
    }


async def rerank(core: Core, body: Any) -> dict[str, Any]:
    """Cohere v1's, Jina's and vLLM's reply: a string document as {"text": ...}."""
    req, model, scores, tokens = await _rank(core, body)
    return _body(req, model, scores, tokens, _documents(req))


async def rerank_as_sent(core: Core, body: Any) -> dict[str, Any]:
    """Infinity's reply (its /rerank; RunPod's native jobs): documents as sent."""
    req, model, scores, tokens = await _rank(core, body)
    return _body(req, model, scores, tokens, _documents(req, as_sent=True))


async def rerank_v2(core: Core, body: Any) -> dict[str, Any]:
    """Cohere v2's reply: tokens in `meta` and `usage`."""
    req, model, scores, tokens = await _rank(core, body)
    return {
        "id": reply_meta()["id"],
        "model": model,
        "results": ranking.ranked_results(scores, req.raw_scores, req.top_n, _documents(req)),
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
        "usage": {"prompt_tokens": int(tokens), "total_tokens": int(tokens)},
    }


RERANK = Operation(
    "/v1/rerank",
    "POST",
    rerank,
    "Score documents against a query, highest first (Cohere v1's, Jina's and vLLM's reply: "
    "a string document as {'text': ...}).",
    RerankResponse,
    RerankRequest,
    "rerank",
    example=EXAMPLE,
)
RERANK_AS_SENT = Operation(
    "/rerank",
    "POST",
    rerank_as_sent,
    "Score documents against a query, highest first (Infinity's reply: documents as sent).",
    RerankResponse,
    RerankRequest,
    "rerank",
    example=EXAMPLE,
)
RERANK_V2 = Operation(
    "/v2/rerank",
    "POST",
    rerank_v2,
    "Score documents against a query, highest first (Cohere v2's reply shape).",
    RerankV2Response,
    RerankRequest,
    "rerank",
    example=EXAMPLE,
)
