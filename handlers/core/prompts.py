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
    """The text prefixed to every text input ('' for none): the request's prompt_name (or
    Jina's task, the same), else its input_type's prompt when the model has it, else the
    model's default prompt.

    Raises:
        ServiceError: INVALID for a prompt (or task) the model lacks, naming its prompts
            (the schema refuses two of prompt_name, input_type and task).
    """
    for param in ("prompt_name", "task"):
        name = getattr(req, param)
        if name is None:
            continue
        if name not in info.prompts:
            raise ServiceError(
                ErrorKind.INVALID,
                f"Model '{info.id}' has no prompt {name!r}. "
                f"Its prompts: {', '.join(info.prompts) or 'none'}.",
                param=param,
                code="unknown_prompt",
            )
        return info.prompts[name]
    if req.input_type is not None:
        return info.prompts.get(INPUT_TYPES[req.input_type] or "", "")
    return info.prompts.get(info.default_prompt_name or "", "")
