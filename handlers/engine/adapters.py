"""A model's task adapters: PEFT LoRA adapters in subfolders (jina-embeddings-v3), loaded with
transformers' `load_adapter` and switched per batch."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

__all__ = ["AdapterSwitch", "find", "load"]


def find(folder: Path | None) -> tuple[str, ...]:
    """The names of the LoRA adapters in `folder`'s subfolders (one `adapter_config.json`
    each, as peft saves one), sorted; () for none or no folder."""
    if folder is None or not folder.is_dir():
        return ()
    names = []
    for config_file in folder.glob("*/adapter_config.json"):
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and config.get("peft_type") == "LORA":
            names.append(config_file.parent.name)
    return tuple(sorted(names))


def load(model: Any, folder: Path, names: tuple[str, ...]) -> AdapterSwitch:
    """Load the adapters `names` (subfolders of `folder`) into `model` (a
    SentenceTransformer, whose `load_adapter` is transformers'), all inactive."""
    with warnings.catch_warnings():  # peft warns that a second adapter is a second adapter
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        for name in names:
            model.load_adapter(str(folder), adapter_name=name, adapter_kwargs={"subfolder": name})
    switch = AdapterSwitch(model)
    switch.use(None)
    return switch


class AdapterSwitch:
    """Which adapter one replica's forward pass applies (None: the base weights). Used from
    the replica's forward thread only."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.active: str | None = ""  # unknown until the first use

    def use(self, name: str | None) -> None:
        if name == self.active:
            return
        if name is None:
            self.model.disable_adapters()
        else:
            self.model.enable_adapters()
            self.model.set_adapter(name)
        self.active = name
