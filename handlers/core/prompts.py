"""The sentence-transformers prompt an embeddings request applies (name, input type, default)."""

from __future__ import annotations

from handlers.core.schemas import INPUT_TYPES, EmbeddingsRequest
from handlers.errors import ErrorKind, ServiceError
from handlers.model_info import ModelInfo

__all__ = ["input_types", "prompt_for"]


def input_types(info: ModelInfo) -> dict[str, str | None]:
    """Each input_type and the prompt name it applies on this model (None: text as is)."""
    return {kind: name if name in info.prompts else None for kind, name in INPUT_TYPES.items()}


def prompt_for(req: EmbeddingsRequest, info: ModelInfo) -> str:
    """The text prefixed to every text input ('' for none): the request's prompt_name, else
    its input_type's prompt when the model has it, else the model's default prompt.

    Raises:
        ServiceError: INVALID for a prompt the model lacks (the schema refuses prompt_name
            with input_type).
    """
    if req.prompt_name is not None:
        if req.prompt_name not in info.prompts:
            raise ServiceError(
                ErrorKind.INVALID,
                f"Model '{info.id}' has no prompt {req.prompt_name!r}. "
                f"Its prompts: {', '.join(info.prompts) or 'none'}.",
                param="prompt_name",
                code="unknown_prompt",
            )
        return info.prompts[req.prompt_name]
    if req.input_type is not None:
        return info.prompts.get(INPUT_TYPES[req.input_type], "")
    return info.prompts.get(info.default_prompt_name or "", "")
