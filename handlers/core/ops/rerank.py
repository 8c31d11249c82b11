"""POST /v1/rerank and /v2/rerank (Cohere v2's), and Infinity's reply of /rerank (whose
operation, shared with TEI's body, is tei_scores'): documents scored against a query, each by
its best window, highest first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.core import rerank as ranking
from handlers.core.multi_vector import maxsim
from handlers.core.operations import Operation
from handlers.core.ops.embeddings import embed
from handlers.core.parsing import parse_body
from handlers.core.replies import RerankResponse, RerankV2Response, reply_meta
from handlers.core.rerank import RerankRequest
from handlers.core.schemas import EmbeddingsRequest
from handlers.errors import ErrorKind, ServiceError
from handlers.model_info import ModelInfo

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["EXAMPLE", "RERANK", "RERANK_V2", "rerank_as_sent"]

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
    """Validate a rerank body and score its documents: a cross-encoder each by its best
    window's logit, a multi-vector model by MaxSim (scores then raw); a request that names
    no model goes to the only reranker served."""
    req: RerankRequest = parse_body(RerankRequest, body)
    texts = req.texts
    core.check_size("documents", len(texts), [req.query, *texts])
    model = req.model if req.model is not None else core.only("rerank")
    info = core.model(model, "rerank")
    if req.instruction is not None and "rerank_instruction" not in info.capabilities:
        raise ServiceError(
            ErrorKind.INVALID,
            f"Model '{model}' takes no instruction: instruction is for LLM rerankers "
            "(capability rerank_instruction).",
            param="instruction",
        )
    if info.similarity is not None:
        for field in ("max_tokens_per_doc", "max_chunks_per_doc"):
            if getattr(req, field) is not None:
                raise ServiceError(
                    ErrorKind.INVALID,
                    f"Model '{model}' scores by late interaction: {field} applies to "
                    "cross-encoders' windows (it reads each document up to its document length).",
                    param=field,
                )
        req.raw_scores = True
    if not texts:
        return req, model, [], 0
    if info.similarity is not None:
        scores, tokens = await late_interaction(core, info, req.query, texts)
        return req, model, scores, tokens
    windows = await core.backend.windows(
        model, req.query, texts, req.max_tokens_per_doc, req.max_chunks_per_doc, req.instruction
    )
    async with core.backend.admit(model, len(windows.items)) as ticket:
        scores, tokens = await core.backend.rerank(ticket, windows, req.instruction)
    return req, model, windows.best(scores, len(texts)), tokens


async def late_interaction(
    core: Core, info: ModelInfo, query: str, docs: list[str]
) -> tuple[list[float], int]:
    """A multi-vector model's score of each document against the query: the query's token
    vectors (its query side) against each document's (its document side), by the model's
    MaxSim or MeanMaxSim; and tokens."""
    ask = {"model": info.id, "input": [query], "input_type": "query"}
    _, (query_vectors,), query_tokens = await embed(
        core, EmbeddingsRequest.model_validate(ask), True
    )
    ask = {"model": info.id, "input": docs, "input_type": "document"}
    _, doc_vectors, doc_tokens = await embed(core, EmbeddingsRequest.model_validate(ask), True)
    mean = info.similarity == "meanmaxsim"
    scores = [maxsim(query_vectors, doc, mean) for doc in doc_vectors]
    return scores, query_tokens + doc_tokens


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
