"""The /v1/models card of one served model: identity, capabilities and live queue figures."""

from __future__ import annotations

from typing import Any

from handlers.core.prompts import input_types
from handlers.model_info import ModelInfo

__all__ = ["card"]


def card(info: ModelInfo, stats: dict[str, Any]) -> dict[str, Any]:
    """One model's entry in /v1/models; `stats` are its scheduler's live figures."""
    out: dict[str, Any] = {
        "id": info.id,
        "object": "model",
        "owned_by": "infinity",
        "created": info.created,
        "capabilities": sorted(info.capabilities),
        "backend": info.backend,
        "dtype": info.dtype,
        "revision": info.revision,
        "max_input_tokens": info.max_input_tokens,
    }
    if info.outputs:
        out["outputs"] = list(info.outputs)
    if info.similarity is not None:
        out |= {"dimensions": info.dimensions, "similarity": info.similarity}
    if info.capabilities & {"sparse_embed", "multi_vector_embed"}:  # sparse: vocabulary ids
        out |= {
            "prompts": list(info.prompts),
            "default_prompt_name": info.default_prompt_name,
            "input_types": input_types(info),
            "fingerprint": info.fingerprint,
        }
    if "embed" in info.capabilities:
        out |= {
            "dimensions": info.dimensions,
            "pooling": info.pooling,
            "normalized": True,
            "prompts": list(info.prompts),
            "default_prompt_name": info.default_prompt_name,
            "adapters": list(info.adapters),
            "input_types": input_types(info),
            "fingerprint": info.fingerprint,
        }
    if "embed" in info.capabilities:  # the inputs it embeds, and what it reads of a clip
        media = [m for m in ("image", "audio") if f"{m}_embed" in info.capabilities]
        out["modalities"] = ["text", *media]
    if info.audio is not None:
        out["audio"] = {
            "sampling_rate": info.audio.sampling_rate,
            "max_seconds": info.audio.max_seconds,
        }
    if info.classes is not None:
        out["classes"] = {
            "labels": list(info.classes.labels),
            "pairs": info.classes.pairs,
            "multi_label": info.classes.multi_label,
        }
    return out | {"stats": {**stats, "dimensions": info.dimensions}}
