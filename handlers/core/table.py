"""The service's operation table: every API operation, each declared once in its own module
(handlers.core.ops; TEI's in its tei_* modules); the HTTP apps, the RunPod adapter, the
OpenAPI document and the API page are built from it."""

from __future__ import annotations

from handlers.core.ops import (
    classify,
    cohere_embed,
    embeddings,
    models,
    rerank,
    score,
    tei_embed,
    tei_root,
    tei_scores,
    tei_tokens,
    tokenize,
)

__all__ = ["OPERATIONS"]

OPERATIONS = (
    models.LIST,
    embeddings.EMBEDDINGS,
    rerank.RERANK,
    tei_scores.RERANK_ROOT,
    tokenize.TOKENIZE,
    cohere_embed.EMBED_V1,
    cohere_embed.EMBED_V2,
    rerank.RERANK_V2,
    classify.CLASSIFY,
    classify.CLASSIFY_INFINITY,
    score.SCORE,
    tei_embed.EMBED,
    tei_embed.EMBED_SPARSE,
    tei_embed.EMBED_ALL,
    tei_scores.PREDICT,
    tei_scores.SIMILARITY,
    tei_tokens.TOKENIZE,
    tei_tokens.DECODE,
    tei_tokens.INFO,
    tei_root.ROOT,
)
