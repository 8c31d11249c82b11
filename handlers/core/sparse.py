"""Sparse embeddings as replied: the options a sparse encoder cannot honour refused, each
input's active dimensions pruned (top k, threshold), with their tokens on request."""

from __future__ import annotations

from typing import Any

from handlers.core.schemas import INPUT_TYPES, EmbeddingsRequest
from handlers.engine.seam import SparseVector
from handlers.errors import ErrorKind, ServiceError

__all__ = ["check_options", "refuse_fields", "refuse_sparse_options", "rows", "task_of"]

TASKS = ("query", "document")  # a SparseEncoder's encode_query / encode_document


def refuse_fields(fields: dict[str, bool], message: str) -> None:
    """A 400 naming the first of `fields` that is set (`message` names it as {field}).

    Raises:
        ServiceError: INVALID naming the field.
    """
    for field, set_ in fields.items():
        if set_:
            raise ServiceError(ErrorKind.INVALID, message.format(field=field), param=field)


def check_options(req: EmbeddingsRequest, model: str) -> None:
    """A 400 naming the first dense-vector option the request sets for a sparse encoder."""
    dense = {
        "encoding_format": req.encoding_format != "float",
        "dimensions": req.dimensions is not None,
        "embedding_type": req.embedding_type != "float",
        "normalize": not req.normalize,
    }
    refuse_fields(
        dense,
        f"Model '{model}' is a sparse encoder: {{field}} applies to dense vectors only (its "
        "embeddings are {{'indices', 'values'}}; prune with sparse_top_k or sparse_threshold).",
    )


def refuse_sparse_options(req: EmbeddingsRequest, model: str) -> None:
    """A 400 naming the first sparse-only option the request sets for a dense model."""
    fields = ("sparse_top_k", "sparse_threshold", "return_tokens")
    refuse_fields(
        {field: getattr(req, field) not in (None, False) for field in fields},
        f"Model '{model}' is not a sparse encoder: {{field}} applies to sparse embeddings "
        "only (see capabilities in /v1/models).",
    )


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
