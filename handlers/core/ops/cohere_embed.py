"""POST /v1/embed and /v2/embed: embeddings in Cohere's shapes (cohere.Client / ClientV2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.core import cohere
from handlers.core.cohere import CohereEmbedRequest, cohere_names
from handlers.core.operations import Operation
from handlers.core.ops.embeddings import embed
from handlers.core.parsing import parse_body
from handlers.core.replies import CohereEmbedResponse, reply_meta
from handlers.errors import ServiceError

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["EMBED_V1", "EMBED_V2"]

EXAMPLE = {"texts": ["The food was delicious."], "input_type": "search_document"}


async def _cohere_embed(core: Core, body: Any, version: str) -> dict[str, Any]:
    if isinstance(body, dict) and body.get("model") is None:  # Cohere's SDK may omit it
        body = {**body, "model": core.only("embed")}
    req: CohereEmbedRequest = parse_body(CohereEmbedRequest, body, core.context)
    try:
        _, vectors, tokens = await embed(core, req.embeddings)
    except ServiceError as error:  # named as the client sent them: texts[3], not input[3]
        raise cohere_names(error, req.items_field) from None
    return cohere.embed_reply(req, vectors, tokens, version, reply_meta()["id"])


async def embed_v1(core: Core, body: Any) -> dict[str, Any]:
    return await _cohere_embed(core, body, "1")


async def embed_v2(core: Core, body: Any) -> dict[str, Any]:
    return await _cohere_embed(core, body, "2")


EMBED_V1 = Operation(
    "/v1/embed",
    "POST",
    embed_v1,
    "Create embeddings in Cohere v1's shape (cohere.Client().embed).",
    CohereEmbedResponse,
    CohereEmbedRequest,
    "embed",
    example=EXAMPLE,
)
EMBED_V2 = Operation(
    "/v2/embed",
    "POST",
    embed_v2,
    "Create embeddings in Cohere v2's shape (cohere.ClientV2().embed): texts, images or "
    "inputs; several embedding types at once.",
    CohereEmbedResponse,
    CohereEmbedRequest,
    "embed",
    example={**EXAMPLE, "embedding_types": ["float"]},
)
