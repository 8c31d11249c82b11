"""BACKEND=optimum: which embedders go to ONNX, where their exports are cached (exported
once by onnx_export), and how to serve them (OnnxPlan)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from handlers.engine import pipeline
from handlers.engine.conversion import non_text_kind, read_config, resolve
from handlers.engine.onnx_export import export_once

__all__ = ["ACTIVATIONS", "EXPORTER_PACKAGES", "OnnxPlan", "cache_root", "plan"]

PRECISION = {"auto": "fp32", "float32": "fp32", "int8": "int8"}  # model_specs.ONNX_DTYPES
# Packages whose versions change what an export produces: part of the cache key. torch.onnx's
# dynamo exporter builds the graph with onnxscript (on onnx-ir); onnxruntime quantises it.
EXPORTER_PACKAGES = ("torch", "transformers", "onnx", "onnxscript", "onnx-ir", "onnxruntime")
# Dense activations our runner (onnx_runner) computes, by sentence-transformers' name.
ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
}


@dataclass(frozen=True)
class OnnxPlan:
    """An embedder served by onnxruntime (handlers.engine.onnx_runner) from `folder`."""

    folder: Path
    pooling: str  # "mean" or "cls", from the model's sentence-transformers config
    precision: str  # "fp32" or "int8"
    dense: tuple[Path, ...] = ()  # Dense module folders, applied in order after pooling
    lower_case: bool = False  # sentence-transformers' do_lower_case


def cache_root(hf_home: str | None) -> Path:
    """Where exports live: beside the Hugging Face cache (a RunPod volume keeps it)."""
    if hf_home:
        return Path(hf_home) / "onnx"
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "onnx"


def plan(path: str, served_id: str, dtype: str, root: Path) -> OnnxPlan | str:
    """Export the model at `path` (a folder or Hub id) if needed; a string says why not.

    Only a pipeline whose every module the runner computes goes to ONNX: the Transformer,
    mean or CLS Pooling over the whole input, Dense layers with an activation in
    ACTIVATIONS, and a final Normalize. Rerankers, image-text models, models the exporter
    fails on or whose graph differs from torch on the probe (onnx_graph.PROBE_TEXTS), and any
    other module stay on torch; the returned reason is logged by the caller. Settings allow
    only dtypes in PRECISION.
    """
    source = resolve(path)
    config = read_config(source)
    if kind := non_text_kind(config):
        return f"ONNX export covers text embedders only, not {kind}"
    modules = pipeline.modules(source)
    if reason := _unsupported(modules):
        return reason
    precision = PRECISION[dtype]
    folder = root / f"{_slug(served_id)}-{_digest(source)}" / precision
    if not folder.is_dir():  # the exporter (torch, transformers) is imported only to export
        model_type = str(config.get("model_type"))
        if reason := export_once(source, folder, precision, _max_length(source), model_type):
            return reason
    return OnnxPlan(
        folder,
        str(pipeline.pooling(source)),
        precision,
        tuple(m.folder for m in modules if m.name == "Dense"),
        bool(_sentence_config(source).get("do_lower_case", False)),
    )


def _unsupported(modules: list[pipeline.Module]) -> str | None:
    """Why the runner cannot compute this pipeline; None when it can (see plan)."""
    if len(modules) < 2:
        return "the ONNX path needs a Pooling module after the Transformer; this pipeline has none"
    allowed = ["Transformer", "Pooling", *["Dense"] * (len(modules) - 2)]
    if modules[-1].name == "Normalize" and len(modules) > 2:
        allowed[-1] = "Normalize"
    for index, (module, expected) in enumerate(zip(modules, allowed, strict=False)):
        where = f"module {index}, {module.type}"
        if module.name != expected:
            return (
                "the ONNX path computes Transformer, Pooling, Dense and a final Normalize "
                f"modules only, not {where}"
            )
        if module.name == "Pooling":
            mode = pipeline.pooling_name(module.config)
            if mode not in ("mean", "cls"):
                return f"the ONNX path has no {mode} pooling ({where})"
            if module.config.get("include_prompt", True) is False:
                return f"the ONNX path pools over the whole input, prompt included ({where})"
        if module.name == "Dense":
            activation = module.config.get("activation_function", "")
            if activation not in ACTIVATIONS:
                return f"the ONNX path has no {activation} activation ({where})"
    return None


def _sentence_config(source: Path) -> dict[str, Any]:
    """The folder's sentence_bert_config.json ({} when none)."""
    config = source / "sentence_bert_config.json"
    return json.loads(config.read_text()) if config.is_file() else {}


def _max_length(source: Path) -> int | None:
    """sentence-transformers' max_seq_length: what the torch engine truncates at."""
    return _sentence_config(source).get("max_seq_length")


def _slug(served_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in served_id)[-80:]


def _digest(source: Path) -> str:
    """Names the export: the source folder (a Hub snapshot folder is the revision), its
    weights and the exporter's package versions."""
    h = hashlib.sha256(str(source).encode())
    for package in EXPORTER_PACKAGES:
        h.update(f"{package}=={version(package)};".encode())
    for weights in sorted(source.glob("*.safetensors")) + sorted(source.glob("*.bin")):
        stat = weights.stat()
        h.update(f"{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:12]
