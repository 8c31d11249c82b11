"""BACKEND=optimum: export embedders to ONNX once into the model cache; say how to serve them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from handlers.engine import pipeline
from handlers.engine.conversion import held, non_text_kind, read_config, resolve

__all__ = ["ACTIVATIONS", "OnnxPlan", "cache_root", "plan"]

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model_quantized.onnx"
PRECISION = {"auto": "fp32", "float32": "fp32", "int8": "int8"}  # settings.ONNX_DTYPES
# Packages whose versions change what an export produces: part of the cache key.
EXPORTER_PACKAGES = ("optimum", "optimum-onnx", "onnx", "onnxruntime", "torch", "transformers")
SCRATCH_PREFIX = ".export-"  # an export in progress, or left by a process that died in one
LOCK_FILE = ".export.lock"  # beside the precision folders of one model
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
    does not know, and any other module stay on torch; the returned reason is logged by
    the caller. Settings allow only dtypes in PRECISION.
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
        if reason := _not_exportable(config):
            return reason
        _export_once(source, folder, precision, _max_length(source))
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


def _not_exportable(config: dict) -> str | None:
    """Why optimum's exporter cannot export this model type for feature extraction."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager

    model_type = str(config.get("model_type"))
    try:
        tasks = TasksManager.get_supported_tasks_for_model_type(
            model_type, "onnx", library_name="transformers"
        )
    except KeyError:
        tasks = {}
    if "feature-extraction" not in tasks:
        return f"the ONNX exporter cannot export {model_type} models"
    return None


def _sentence_config(source: Path) -> dict:
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


def _export_once(source: Path, folder: Path, precision: str, max_length: int | None) -> None:
    """Export unless another process did meanwhile: workers sharing one volume take a file
    lock around check-then-export (conversion.held), so one exports and the others wait
    and reuse it."""
    with held(folder.parent / LOCK_FILE, f"ONNX export into {folder.parent}"):
        if not folder.is_dir():
            _remove_stale_scratch(folder.parent)
            _export(source, folder, precision, max_length)


def _remove_stale_scratch(parent: Path) -> None:
    """Scratch folders found while holding the lock belong to exports that died."""
    for stale in parent.glob(f"{SCRATCH_PREFIX}*"):
        log.warning("removing %s, left by an ONNX export that did not finish", stale)
        shutil.rmtree(stale, ignore_errors=True)


class _QuantiserInfo(logging.Filter):
    """Drops the INFO and DEBUG records onnxruntime's quantiser logs straight on the root
    logger (one per tensor); its warnings and every other logger's records pass."""

    def __init__(self) -> None:
        super().__init__()
        import onnxruntime.quantization

        self.prefix = str(Path(onnxruntime.quantization.__file__).parent) + os.sep

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not record.pathname.startswith(self.prefix)


def _quantise(out: Path) -> None:
    """Dynamic int8 quantisation (per-channel weights) of the fp32 export, replacing it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = _QuantiserInfo()
    logging.root.addFilter(quiet)
    try:
        quantize_dynamic(
            out / FP32_FILE, out / INT8_FILE, per_channel=True, weight_type=QuantType.QInt8
        )
    finally:
        logging.root.removeFilter(quiet)
    (out / FP32_FILE).unlink()


def _export(source: Path, folder: Path, precision: str, max_length: int | None) -> None:
    """Export into a scratch folder beside `folder`, then rename it into place atomically."""
    from optimum.exporters.onnx import main_export

    log.info("exporting %s to ONNX (%s) into %s, once", source, precision, folder)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=SCRATCH_PREFIX) as scratch:
        out = Path(scratch) / "model"
        # transformers-style outputs (last_hidden_state): what our runner (onnx_runner) reads
        main_export(
            str(source),
            out,
            task="feature-extraction",
            library_name="transformers",
            do_validation=False,
        )
        if precision == "int8":
            _quantise(out)
        if max_length:
            # The runner truncates at config.max_position_embeddings; the
            # torch engine at max_seq_length. Cap the served copy's config to match torch.
            config_file = out / "config.json"
            config = json.loads(config_file.read_text())
            config["max_position_embeddings"] = min(
                max_length, config.get("max_position_embeddings", max_length)
            )
            config_file.write_text(json.dumps(config, indent=2))
        os.rename(out, folder)
