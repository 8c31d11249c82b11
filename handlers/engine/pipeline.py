"""A sentence-transformers folder's module pipeline (modules.json): what computes its vectors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Module", "describe", "modules", "pooling", "pooling_name"]

# sentence-transformers' Pooling config keys and the names /v1/models reports for them.
POOLING_NAMES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# sentence-transformers 6's `pooling_mode` names that differ from ours
MODE_NAMES = {"mean_sqrt_len_tokens": "mean_sqrt_len"}


@dataclass(frozen=True)
class Module:
    """One entry of modules.json: its class name (`Pooling`, `Dense`, ...), import path,
    folder and config (the folder's config.json; {} when it has none)."""

    name: str
    type: str
    folder: Path
    config: dict[str, Any]


def modules(source: Path) -> list[Module]:
    """The folder's pipeline in order; a plain transformers folder (no modules.json) is what
    sentence-transformers makes of it: Transformer, then mean Pooling."""
    listing = source / "modules.json"
    if not listing.is_file():
        return [
            Module("Transformer", "sentence_transformers.models.Transformer", source, {}),
            Module(
                "Pooling",
                "sentence_transformers.models.Pooling",
                source,
                {"pooling_mode_mean_tokens": True},
            ),
        ]
    found = []
    for entry in json.loads(listing.read_text()):
        kind = str(entry.get("type", ""))
        folder = source / entry.get("path", "")
        config = folder / "config.json"
        is_transformer = kind.endswith(".Transformer")  # its config.json is the model's
        loaded = json.loads(config.read_text()) if config.is_file() and not is_transformer else {}
        found.append(Module(kind.rsplit(".", 1)[-1], kind, folder, loaded))
    return found


def pooling_name(config: dict[str, Any]) -> str:
    """A Pooling config's mode: `mean`, `cls`, `max`, `lasttoken`, ... (several modes
    joined with `+`), from either format: sentence-transformers 6's `pooling_mode` (a name
    or a list of names) or the `pooling_mode_*` flags of earlier versions."""
    if "pooling_mode" in config:
        modes = config["pooling_mode"]
        names = [modes] if isinstance(modes, str) else list(modes)
        return "+".join(MODE_NAMES.get(name, name) for name in names) or "none"
    return "+".join(name for key, name in POOLING_NAMES.items() if config.get(key)) or "none"


def pooling(source: Path) -> str | None:
    """The pooling sentence-transformers applies to the folder's model; None without a
    Pooling module."""
    config = next((m.config for m in modules(source) if m.name == "Pooling"), None)
    return None if config is None else pooling_name(config)


def describe(source: Path) -> list[dict[str, Any]]:
    """What decides the vector space besides the weights, per module: its type and its
    config (pooling modes, a Dense layer's sizes and activation, ...). The weights of
    every module (a Dense layer's too) are in identity.weights_digest."""
    return [{"type": m.type, "config": m.config} for m in modules(source)]
