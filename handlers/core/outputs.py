"""The outputs an embeddings request asks of its model (dense, sparse, multi-vector): chosen
and checked against what the model gives, each option checked against the outputs that
honour it, and each input's reply value."""

from __future__ import annotations

from typing import Any

from handlers.core import multi_vector, sparse
from handlers.core.schemas import EmbeddingsRequest
from handlers.core.vectors import encode
from handlers.errors import ErrorKind, ServiceError
from handlers.model_info import ModelInfo

__all__ = ["chosen", "data"]

NAMES = {
    "dense": "dense vectors",
    "sparse": "sparse embeddings",
    "multi_vector": "multi-vector (token) vectors",
}
# The outputs that honour each option.
TAKERS = {
    "encoding_format": ("dense", "multi_vector"),
    "embedding_type": ("dense", "multi_vector"),
    "dimensions": ("dense",),
    "normalize": ("dense",),
    "sparse_top_k": ("sparse",),
    "sparse_threshold": ("sparse",),
    "return_tokens": ("sparse",),
    "pool_factor": ("multi_vector",),
}


def chosen(req: EmbeddingsRequest, info: ModelInfo) -> tuple[str, ...]:
    """The outputs `req` asks of the model `info` describes: its `outputs`, else the model's
    default; every option it sets honoured by one of them.

    Raises:
        ServiceError: INVALID naming `outputs` (one the model does not give, or twice) or the
            first option none of the outputs honours.
    """
    gives = info.outputs
    if not gives:  # no embedder: the capability check that follows names what it can do
        return ("dense",)
    wanted = tuple(req.outputs) if req.outputs else gives[:1]
    for name in wanted:
        if name not in gives:
            raise ServiceError(
                ErrorKind.INVALID,
                f"Model '{info.id}' does not give {NAMES[name]} ('{name}'); its outputs: "
                f"{', '.join(gives) or 'none'}.",
                param="outputs",
            )
    if len(set(wanted)) < len(wanted):
        raise ServiceError(ErrorKind.INVALID, "outputs lists an output twice.", param="outputs")
    for field in _options_set(req):
        takers = TAKERS[field]
        if not set(takers) & set(wanted):
            can = [t for t in takers if t in gives]
            hint = (
                f"add {' or '.join(repr(t) for t in can)} to outputs"
                if can
                else f"the model gives {', '.join(gives)}"
            )
            raise ServiceError(
                ErrorKind.INVALID,
                f"{field} applies to {' and '.join(NAMES[t] for t in takers)} only; this "
                f"request asks model '{info.id}' for {' and '.join(NAMES[w] for w in wanted)} "
                f"({hint}; see outputs in /v1/models).",
                param=field,
            )
    if not req.truncate and info.similarity is not None:  # a ColBERT encoder's lengths
        raise ServiceError(
            ErrorKind.INVALID,
            f"truncate=false does not apply to model '{info.id}': a multi-vector encoder "
            "reads each input up to its query or document length.",
            param="truncate",
        )
    return wanted


def _options_set(req: EmbeddingsRequest) -> list[str]:
    """The options of TAKERS that `req` sets (not at their defaults), in TAKERS' order."""
    set_ = {
        "encoding_format": req.encoding_format != "float",
        "embedding_type": req.embedding_type != "float",
        "dimensions": req.dimensions is not None,
        "normalize": not req.normalize,
        "sparse_top_k": req.sparse_top_k is not None,
        "sparse_threshold": req.sparse_threshold is not None,
        "return_tokens": req.return_tokens,
        "pool_factor": req.pool_factor is not None,
    }
    return [field for field in TAKERS if set_[field]]


def data(vectors: list[Any], wanted: tuple[str, ...], req: EmbeddingsRequest) -> list[Any]:
    """Each input's reply value: its one output, or with several outputs a dict of each.
    `vectors` are the model's: its one output's values, or (a model of several outputs)
    dicts of those asked."""
    by_output = bool(vectors) and isinstance(vectors[0], dict)
    columns = {
        name: _rows(name, [v[name] for v in vectors] if by_output else vectors, req)
        for name in wanted
    }
    if len(wanted) == 1:
        return columns[wanted[0]]
    return [{name: columns[name][i] for name in wanted} for i in range(len(vectors))]


def _rows(output: str, values: list[Any], req: EmbeddingsRequest) -> list[Any]:
    if output == "sparse":
        return sparse.rows(values, req)
    if output == "multi_vector":
        return multi_vector.rows(values, req)
    if not values:
        return []
    return encode(
        values,
        encoding=req.encoding_format,
        dimensions=req.dimensions,
        normalize=req.normalize,
        embedding_type=req.embedding_type,
    )
