"""The sentence-transformers prompt (and task adapter) an embeddings request applies."""

from __future__ import annotations

from handlers.core.schemas import INPUT_TYPES, EmbeddingsRequest
from handlers.errors import ErrorKind, ServiceError
from handlers.model_info import ModelInfo

__all__ = ["input_types", "prompt_for"]


def input_types(info: ModelInfo) -> dict[str, str | None]:
    """Each input_type and the prompt name it applies on this model (None: text as is)."""
    return {kind: name if name in info.prompts else None for kind, name in INPUT_TYPES.items()}


def prompt_for(req: EmbeddingsRequest, info: ModelInfo) -> tuple[str, str | None]:
    """The text prefixed to every text input ('' for none) and the task adapter applied
    (None: the base weights): the request's prompt_name (or Jina's task, the same) picks the
    model's prompt and adapter of that name, either or both; else its input_type's prompt
    when the model has it; else the model's default prompt (and its adapter).

    Raises:
        ServiceError: INVALID for a name the model has neither a prompt nor an adapter of,
            naming both (the schema refuses two of prompt_name, input_type and task).
    """
    for param in ("prompt_name", "task"):
        name = getattr(req, param)
        if name is None:
            continue
        adapter = info.adapter_for(name)
        if name not in info.prompts and adapter is None:
            adapters = f" Its task adapters: {', '.join(info.adapters)}." if info.adapters else ""
            raise ServiceError(
                ErrorKind.INVALID,
                f"Model '{info.id}' has no prompt {name!r}. "
                f"Its prompts: {', '.join(info.prompts) or 'none'}.{adapters}",
                param=param,
                code="unknown_prompt",
            )
        return info.prompts.get(name, ""), adapter
    if req.input_type is not None:
        return info.prompts.get(INPUT_TYPES[req.input_type] or "", ""), None
    default = info.default_prompt_name or ""
    return info.prompts.get(default, ""), info.adapter_for(default)
