"""Multi-vector (ColBERT) embeddings as replied, and late-interaction scores: each input's
token vectors encoded, MaxSim."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from numpy.typing import NDArray

from handlers.core.schemas import EmbeddingsRequest
from handlers.core.vectors import FLOATS, quantize

__all__ = ["maxsim", "rows"]


def rows(matrices: list[NDArray[Any]], req: EmbeddingsRequest) -> list[Any]:
    """Each input's token vectors (tokens x dimensions) as the reply carries them: a list of
    rows (float32, float16, or quantised as embedding_type says, from the normalised
    vectors), or with base64 the row-major bytes (little-endian float32 or float16, or one
    byte per value)."""
    out: list[Any] = []
    for matrix in matrices:
        values = quantize(np.asarray(matrix, dtype=np.float32), req.embedding_type)
        if req.encoding_format == "base64":
            kind = req.embedding_type
            raw = values.astype(FLOATS[kind]) if kind in FLOATS else values
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
