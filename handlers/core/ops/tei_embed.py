"""TEI's POST /embed, /embed_sparse and /embed_all: bare lists of vectors, of {"index",
"value"} and of token vectors, each a shape of our embeddings operation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, PositiveInt, RootModel

from handlers.core import outputs, tei
from handlers.core.operations import Operation
from handlers.core.ops.embeddings import embed
from handlers.core.parsing import parse_body
from handlers.core.schemas import EmbeddingsRequest
from handlers.core.vectors import encode

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["EMBED", "EMBED_ALL", "EMBED_SPARSE", "tei_embed", "tei_embed_sparse"]


class EmbedRequest(tei.TeiRequest):
    normalize: bool = Field(True, description="false: the pooling output as it is.")
    dimensions: PositiveInt | None = Field(
        None, description="Matryoshka: the first N dimensions (normalised after the cut)."
    )


class SparseRequest(tei.TeiRequest):
    raw_scores: bool = Field(False, description="Accepted; the weights are the model's own.")


class EmbedReply(RootModel[list[list[float]]]):
    pass


class SparseValue(RootModel[list[list[dict[str, float]]]]):
    """Per input its active dimensions, [{"index", "value"}], ascending index."""


class TokenVectors(RootModel[list[list[list[float]]]]):
    """Per input its token vectors."""


async def _run(
    core: Core, body: Any, cls: type, capability: str, copied: tuple[str, ...] = (), **ours: Any
) -> tuple[Any, EmbeddingsRequest, list[Any]]:
    """Validate a TEI body and embed it with the model its route answers for, with `ours`
    and the `copied` fields of the TEI request as our request's: (request, our request, the
    model's values)."""
    req = parse_body(cls, body)
    info = core.first(req.model, capability)
    items = req.items()
    core.check_size("input", len(items), [i for i in items if isinstance(i, str)])
    texts = await tei.texts(core, info.id, items)
    ours |= {field: getattr(req, field) for field in copied}
    ask: EmbeddingsRequest = parse_body(
        EmbeddingsRequest, tei.our_fields(req, info.id, texts) | ours, core.context
    )
    _, values, _ = await embed(core, ask, beyond_dense=capability != "embed")
    return req, ask, values


@tei.speaks_tei
async def tei_embed(core: Core, body: Any) -> list[Any]:
    req, _, vectors = await _run(
        core, body, EmbedRequest, "embed", copied=("normalize", "dimensions")
    )
    return encode(
        vectors,
        encoding="float",
        dimensions=req.dimensions,
        normalize=req.normalize,
        embedding_type="float",
    )


@tei.speaks_tei
async def tei_embed_sparse(core: Core, body: Any) -> list[Any]:
    _, ask, values = await _run(core, body, SparseRequest, "sparse_embed", outputs=["sparse"])
    return [
        [{"index": i, "value": v} for i, v in zip(row["indices"], row["values"], strict=True)]
        for row in outputs.data(values, ("sparse",), ask)
    ]


@tei.speaks_tei
async def tei_embed_all(core: Core, body: Any) -> list[Any]:
    _, ask, values = await _run(
        core, body, tei.TeiRequest, "multi_vector_embed", outputs=["multi_vector"]
    )
    return outputs.data(values, ("multi_vector",), ask)


EXAMPLE = {"inputs": ["What is Deep Learning?"]}
EMBED = Operation(
    "/embed",
    "POST",
    tei_embed,
    "TEI's /embed: a vector per input, as a bare list.",
    EmbedReply,
    EmbedRequest,
    "embed",
    example=EXAMPLE,
    errors="tei",
)
EMBED_SPARSE = Operation(
    "/embed_sparse",
    "POST",
    tei_embed_sparse,
    "TEI's /embed_sparse: per input its active dimensions as [{'index', 'value'}] (sparse "
    "encoders and BGE-M3-style models).",
    SparseValue,
    SparseRequest,
    "sparse_embed",
    example=EXAMPLE,
    errors="tei",
)
EMBED_ALL = Operation(
    "/embed_all",
    "POST",
    tei_embed_all,
    "TEI's /embed_all: per input its token vectors (multi-vector models: ColBERT, BGE-M3).",
    TokenVectors,
    tei.TeiRequest,
    "multi_vector_embed",
    example=EXAMPLE,
    errors="tei",
)
