"""TEI's POST /: the route TEI's server answers there for the model it serves (here the first
served), by kind: a classifier predicts, a reranker reranks, a sparse encoder embeds sparse,
an embedder embeds; a body of source_sentence and sentences asks for similarity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import RootModel

from handlers.core.operations import Operation
from handlers.core.ops import tei_embed, tei_scores

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["ROOT"]


async def root(core: Core, body: Any) -> Any:
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if isinstance(inputs, dict) and "source_sentence" in inputs:
        return await tei_scores.similarity(core, body)
    capabilities = next(iter(core.backend.models().values())).capabilities
    if "classify" in capabilities:
        return await tei_scores.predict(core, body)
    if "rerank" in capabilities and "multi_vector_embed" not in capabilities:
        return await tei_scores.rerank(core, body)
    if "sparse_embed" in capabilities and "embed" not in capabilities:
        return await tei_embed.tei_embed_sparse(core, body)
    return await tei_embed.tei_embed(core, body)


class RootRequest(RootModel[dict[str, Any]]):
    """The body of the route the first served model's kind picks (/embed, /embed_sparse,
    /predict, /rerank with texts, or /similarity)."""


class RootReply(RootModel[Any]):
    """That route's reply."""


ROOT = Operation(
    "/",
    "POST",
    root,
    "TEI's POST /: /embed, /embed_sparse, /predict or /rerank (TEI's body) as the first "
    "served model's kind says; /similarity for a body of source_sentence and sentences.",
    RootReply,
    RootRequest,
    example={"inputs": "What is Deep Learning?"},
    errors="tei",
)
