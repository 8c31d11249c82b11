"""The service's operation table: every API operation, each declared once in its own module
(handlers.core.ops); the HTTP apps, the RunPod adapter, the OpenAPI document and the API page
are built from it."""

from __future__ import annotations

from handlers.core.ops import classify, cohere_embed, embeddings, models, rerank, score, tokenize

__all__ = ["OPERATIONS"]

OPERATIONS = (
    models.LIST,
    embeddings.EMBEDDINGS,
    rerank.RERANK,
    rerank.RERANK_AS_SENT,
    tokenize.TOKENIZE,
    cohere_embed.EMBED_V1,
    cohere_embed.EMBED_V2,
    rerank.RERANK_V2,
    classify.CLASSIFY,
    classify.CLASSIFY_INFINITY,
    score.SCORE,
)
