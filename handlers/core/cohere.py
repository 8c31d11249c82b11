"""Cohere's embed reply (/v1/embed, /v2/embed): every type asked, from one pass of the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from handlers.core.schemas import CohereEmbedRequest
from handlers.core.vectors import encode

__all__ = ["embed_reply"]


def _rows(vectors: list[np.ndarray], kind: str, dimensions: int | None) -> list[Any]:
    """One embedding type's rows: `base64` is float32 bytes; the others as /v1/embeddings."""
    if not vectors:
        return []
    return encode(
        vectors,
        encoding="base64" if kind == "base64" else "float",
        dimensions=dimensions,
        normalize=True,
        embedding_type="float" if kind == "base64" else kind,
    )


def embed_reply(
    req: CohereEmbedRequest, vectors: list[np.ndarray], tokens: int, version: str, reply_id: str
) -> dict[str, Any]:
    """Without embedding_types, v1 replies `embeddings_floats` (a list of vectors) and v2
    `{"float": [...]}`; with them, one list per type. `texts` are the text inputs as sent."""
    inner = req.embeddings
    types = req.embedding_types or (None if version == "1" else ["float"])
    if types is None:
        embeddings: Any = _rows(vectors, "float", inner.dimensions)
    else:
        embeddings = {kind: _rows(vectors, kind, inner.dimensions) for kind in types}
    texts = [item for item, kind in zip(inner.input, inner.kinds, strict=True) if kind != "image"]
    return {
        "id": reply_id,
        "response_type": "embeddings_floats" if types is None else "embeddings_by_type",
        "embeddings": embeddings,
        "texts": texts,
        "meta": {"api_version": {"version": version}, "billed_units": {"input_tokens": tokens}},
    }
