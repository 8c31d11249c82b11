"""POST /v1/tokenize: token ids, strings and offsets of texts, never truncated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.core.operations import Operation
from handlers.core.parsing import parse_body
from handlers.core.replies import TokenizeResponse
from handlers.core.schemas import TokenizeRequest
from handlers.errors import ErrorKind, ServiceError

if TYPE_CHECKING:
    from handlers.core.dispatch import Core

__all__ = ["TOKENIZE"]


async def tokenize(core: Core, body: Any) -> dict[str, Any]:
    req: TokenizeRequest = parse_body(TokenizeRequest, body, core.context)
    core.check_size("input", len(req.input), req.input)
    core.model(req.model)
    data = await core.backend.tokenize(req.model, req.input, req.add_special_tokens)
    if data is None:
        raise ServiceError(
            ErrorKind.INVALID,
            f"Model '{req.model}' has no fast tokenizer; /v1/tokenize is not available for it.",
            param="model",
            code="model_capability",
        )
    return {"object": "list", "model": req.model, "data": data}


TOKENIZE = Operation(
    "/v1/tokenize",
    "POST",
    tokenize,
    "Token ids, token strings and character offsets of texts, with their counts (never truncated).",
    TokenizeResponse,
    TokenizeRequest,
    example={"input": ["The food was delicious."]},
)
