"""Shared by the ONNX export and the CTranslate2 conversion: the model's source folder and
kind, and the cross-process lock on a shared model cache."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

__all__ = ["held", "non_text_kind", "read_config", "resolve"]

log = logging.getLogger(__name__)

# Files a Hugging Face snapshot needs for a conversion; weights are added below.
# Module folders (a Dense layer's `2_Dense/`) may keep their weights as pytorch_model.bin.
SNAPSHOT_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*/pytorch_model.bin"]


def resolve(path: str, revision: str | None = None) -> Path:
    """A local folder as is; a Hub id through the cache (its folder names the revision)."""
    if Path(path).is_dir():
        return Path(path).resolve()
    from huggingface_hub import snapshot_download

    folder = Path(snapshot_download(path, revision=revision, allow_patterns=SNAPSHOT_PATTERNS))
    if not any(folder.glob("*.safetensors")):
        patterns = [*SNAPSHOT_PATTERNS, "*.bin"]
        folder = Path(snapshot_download(path, revision=revision, allow_patterns=patterns))
    return folder


def read_config(source: Path) -> dict[str, Any]:
    """The model's config.json."""
    config: dict[str, Any] = json.loads((source / "config.json").read_text())
    return config


def non_text_kind(config: dict[str, Any]) -> str | None:
    """ "image-text models" (any config with a `vision_config`: CLIP, SigLIP, ...) or
    "rerankers" when config.json says the model is one; None for a text model."""
    architectures = " ".join(config.get("architectures") or [])
    if config.get("vision_config") or config.get("model_type") == "clip":
        return "image-text models"
    if "ForSequenceClassification" in architectures:
        return "rerankers"
    return None


@contextmanager
def held(lock_file: Path, what: str) -> Iterator[None]:
    """Hold the OS file lock `lock_file` (its folder is created) while inside, so processes
    sharing one cache (workers on one volume) do `what` once; the others wait, saying so.
    The OS releases the lock of a process that dies, so a killed holder never blocks."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another process's %s", what)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
