"""Multi-vector (ColBERT) embeddings as replied, and late-interaction scores: the options
such a model cannot honour refused, each input's token vectors encoded, MaxSim."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.typing import NDArray

from handlers.core.schemas import EmbeddingsRequest
from handlers.core.sparse import refuse_fields
from handlers.core.vectors import quantize

__all__ = ["check_options", "maxsim", "rows"]


def check_options(req: EmbeddingsRequest, model: str) -> None:
    """A 400 naming the first option a multi-vector model cannot honour."""
    refused = {
        "dimensions": req.dimensions is not None,
        "normalize": not req.normalize,
        "truncate": not req.truncate,
        "sparse_top_k": req.sparse_top_k is not None,
        "sparse_threshold": req.sparse_threshold is not None,
        "return_tokens": req.return_tokens,
    }
    refuse_fields(
        refused,
        f"Model '{model}' is a multi-vector encoder: {{field}} does not apply to its token "
        "vectors (each read up to its query or document length; encoding_format and "
        "embedding_type do).",
    )


def rows(matrices: list[NDArray[Any]], req: EmbeddingsRequest) -> list[Any]:
    """Each input's token vectors (tokens x dimensions) as the reply carries them: a list of
    rows (float32, or quantised as embedding_type says, from the normalised vectors), or
    with base64 the row-major bytes (little-endian float32, or one byte per value)."""
    out: list[Any] = []
    for matrix in matrices:
        values = quantize(np.asarray(matrix, dtype=np.float32), req.embedding_type)
        if req.encoding_format == "base64":
            raw = values.astype("<f4", copy=False) if req.embedding_type == "float" else values
            out.append(base64.b64encode(raw.tobytes()).decode("ascii"))
        else:
            out.append(values)
    return out


def maxsim(query: NDArray[Any], document: NDArray[Any], mean: bool = False) -> float:
    """Late interaction: each query vector's best dot product with a document vector,
    summed (MaxSim; averaged over the query's vectors with `mean`, MeanMaxSim)."""
    q = np.asarray(query, dtype=np.float64)
    best = (q @ np.asarray(document, dtype=np.float64).T).max(axis=1)
    return float(best.mean() if mean else best.sum())
