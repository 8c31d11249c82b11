"""The `input` field's first reading: a string becomes a one-item list; token-id arrays
become the texts they encode, or are refused naming both fixes."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationInfo
from pydantic_core import PydanticCustomError

from handlers.errors import At, ErrorKind, ServiceError

__all__ = ["TOKEN_ARRAY_MESSAGE", "input_as_list"]

TOKEN_ARRAY_MESSAGE = (
    "token-id arrays are not supported as input: send the text itself (LangChain: set "
    "check_embedding_ctx_length=False), or start the server with TOKEN_ARRAYS=cl100k to "
    "read them as OpenAI's cl100k_base tokens"
)


def _is_token_ids(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )


def input_as_list(value: Any, info: ValidationInfo) -> Any:
    """A single string becomes a one-item list. Token-id arrays (one, or a list of them)
    become the texts they encode when the context has a `token_arrays` decoder
    (TOKEN_ARRAYS=cl100k); otherwise they are refused, naming both fixes."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        return value
    if any(isinstance(v, int) and not isinstance(v, bool) for v in value):
        value = [value]  # one token-id array
    elif not any(isinstance(v, list) for v in value):
        return value
    context = info.context or {}
    decode = context.get("token_arrays")
    if decode is None:
        raise PydanticCustomError("token_ids", TOKEN_ARRAY_MESSAGE)
    ids, most = sum(len(v) for v in value if isinstance(v, list)), context.get("max_token_ids")
    if most is not None and ids > most:  # before decoding: each id is at least a character
        raise ServiceError(
            ErrorKind.TOO_LARGE,
            f"The request holds {ids} token ids; at most {most} are allowed (MAX_TOTAL_CHARS).",
            param="input",
            code="too_many_characters",
        )
    texts = []
    for index, item in enumerate(value):
        if isinstance(item, list) and not _is_token_ids(item):
            raise ServiceError(
                ErrorKind.INVALID,
                At(("input", index), ": a token-id array holds integers only"),
                param="input",
            )
        texts.append(decode(index, item) if isinstance(item, list) else item)
    return texts
