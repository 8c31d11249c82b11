"""Sparse embeddings as replied: each input's active dimensions pruned (top k, threshold),
with their tokens on request; the task a request sets a sparse encoder."""

from __future__ import annotations

from typing import Any

from handlers.core.schemas import INPUT_TYPES, EmbeddingsRequest
from handlers.engine.seam import SparseVector

__all__ = ["rows", "task_of"]

TASKS = ("query", "document")  # a SparseEncoder's encode_query / encode_document


def task_of(req: EmbeddingsRequest) -> str | None:
    """The encoder's task, as encode_query / encode_document set it: the prompt name or
    input_type's prompt when it is query or document; None otherwise (encode)."""
    name = req.prompt_name or req.task
    if name is None and req.input_type is not None:
        name = INPUT_TYPES[req.input_type]
    return name if name in TASKS else None


def rows(vectors: list[SparseVector], req: EmbeddingsRequest) -> list[dict[str, Any]]:
    """Each input's {"indices", "values"} (ascending indices), the weights below
    sparse_threshold dropped and the sparse_top_k largest kept, with "tokens" when asked."""
    out = []
    for vector in vectors:
        kept = list(range(len(vector.indices)))
        if req.sparse_threshold is not None:
            kept = [i for i in kept if vector.values[i] >= req.sparse_threshold]
        if req.sparse_top_k is not None and len(kept) > req.sparse_top_k:
            largest = sorted(kept, key=lambda i: vector.values[i], reverse=True)
            kept = sorted(largest[: req.sparse_top_k])
        row: dict[str, Any] = {
            "indices": [vector.indices[i] for i in kept],
            "values": [vector.values[i] for i in kept],
        }
        if req.return_tokens:
            row["tokens"] = [vector.tokens[i] for i in kept]
        out.append(row)
    return out
