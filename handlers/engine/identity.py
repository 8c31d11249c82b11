"""Model identity: where the weights come from, their revision, the vector space's fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "default_prompt_name",
    "dtype_class",
    "fingerprint",
    "model_file",
    "model_json",
    "saved_model_type",
    "prompts",
    "source_folder",
    "weights_digest",
]

log = logging.getLogger(__name__)

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth")  # never ONNX exports
# Precisions whose vectors agree to float rounding: one class. Quantised weights move the
# space (cosine ~0.99 to the float model), so int8 and fp8 are classes of their own.
DTYPE_CLASSES = {"int8": "int8", "fp8": "fp8"}  # every other dtype: "float"
SHA256 = re.compile(r"[0-9a-f]{64}")
CACHE_FOLDER = "embedding-revisions"


def dtype_class(dtype: str) -> str:
    """'float' for auto/float32/float16/bfloat16 (torch) and fp32 ONNX; else int8 or fp8."""
    return DTYPE_CLASSES.get(dtype, "float")


def source_folder(path: str, revision: str | None) -> tuple[Path | None, str | None]:
    """The folder the weights load from, and the Hub commit when it is a Hub snapshot.

    A local folder is itself (no commit); a Hub id is its snapshot in the Hugging Face
    cache, whose folder name is the commit; (None, None) when the cache does not hold it.
    """
    if Path(path).is_dir():
        return Path(path).resolve(), None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(path, "config.json", revision=revision)
    if not isinstance(found, str):
        return None, None
    folder = Path(found).parent
    return folder, folder.name


def model_file(path: str, name: str, revision: str | None) -> Path | None:
    """A file of a local folder or Hub repository (downloaded once); None where it has none."""
    if Path(path).is_dir():
        file = Path(path) / name
        return file if file.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(path, name, revision=revision))
    except EntryNotFoundError:
        return None


def model_json(path: str, name: str, revision: str | None) -> Any:
    """A JSON file of a local folder or Hub repository; None where it has none."""
    file = model_file(path, name, revision)
    return json.loads(file.read_text()) if file is not None else None


def saved_model_type(path: str, revision: str | None) -> str | None:
    """The sentence-transformers class that saved the model at `path` (the `model_type` of
    its config_sentence_transformers.json: SentenceTransformer, CrossEncoder, SparseEncoder,
    MultiVectorEncoder); None where it has none."""
    saved = model_json(path, "config_sentence_transformers.json", revision) or {}
    kind = saved.get("model_type")
    return str(kind) if kind else None


def _file_digest(file: Path) -> str:
    """sha256 of a file's content; a Hub cache blob is named by it already (LFS files)."""
    target = file.resolve()
    if target.parent.name == "blobs" and SHA256.fullmatch(target.name):
        return target.name
    h = hashlib.sha256()
    with open(target, "rb") as stream:
        while chunk := stream.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def weights_digest(folder: Path, cache_root: Path) -> str:
    """sha256 over the names and content of the folder's weight files (any depth).

    Hashing a large folder takes seconds, so the result is kept in `cache_root` keyed by
    the files' paths, sizes and modification times: computed once per copy of the weights.
    """
    files = sorted({p for pattern in WEIGHT_PATTERNS for p in folder.rglob(pattern) if p.is_file()})
    key = hashlib.sha256()
    for file in files:
        stat = file.stat()
        key.update(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    cached = cache_root / CACHE_FOLDER / f"{key.hexdigest()}.txt"
    if cached.is_file():
        return cached.read_text().strip()
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(folder).as_posix()}:{_file_digest(file)};".encode())
    value = digest.hexdigest()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cached.parent, delete=False) as out:
            out.write(value)
        os.replace(out.name, cached)
    except OSError as exc:  # a read-only cache: hash again next start
        log.warning("could not cache the weights digest in %s: %s", cached.parent, exc)
    return value


def _sentence_transformers_config(folder: Path | None) -> dict[str, Any]:
    config = folder / "config_sentence_transformers.json" if folder else None
    return json.loads(config.read_text()) if config is not None and config.is_file() else {}


def prompts(folder: Path | None) -> dict[str, str]:
    """The `prompts` of the folder's config_sentence_transformers.json ({} when none)."""
    found = _sentence_transformers_config(folder).get("prompts") or {}
    return {str(name): str(text) for name, text in found.items()}


def default_prompt_name(folder: Path | None) -> str | None:
    """The model's own `default_prompt_name` (config_sentence_transformers.json), which
    sentence-transformers applies to every text unless told otherwise; None when none."""
    name = _sentence_transformers_config(folder).get("default_prompt_name")
    return str(name) if name else None


def fingerprint(**space: Any) -> str:
    """16 hex digits over what decides the vector space (the weights of every module,
    the module pipeline with each module's config, normalisation, max length, default
    prompt, dtype class), given as JSON-serialisable keywords."""
    canonical = json.dumps(space, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
