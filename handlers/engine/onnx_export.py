"""BACKEND=optimum: export embedders to ONNX once into the model cache with torch's own exporter
(torch.onnx, dynamo), each graph checked against torch; say how to serve them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from handlers.engine import pipeline
from handlers.engine.conversion import held, non_text_kind, read_config, resolve

__all__ = [
    "ACTIVATIONS",
    "MIN_COSINE",
    "PROBE_TEXTS",
    "OnnxPlan",
    "cache_root",
    "export_graph",
    "plan",
    "probe_cosines",
    "probe_features",
    "probe_reason",
]

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model_quantized.onnx"
PRECISION = {"auto": "fp32", "float32": "fp32", "int8": "int8"}  # settings.ONNX_DTYPES
OUTPUT = "last_hidden_state"  # the graph's one output, what the runner (onnx_runner) pools
# Packages whose versions change what an export produces: part of the cache key. torch.onnx's
# dynamo exporter builds the graph with onnxscript (on onnx-ir); onnxruntime quantises it.
EXPORTER_PACKAGES = ("torch", "transformers", "onnx", "onnxscript", "onnx-ir", "onnxruntime")
# The probe each export is checked on, through torch and the fp32 graph, batched and padded:
# a short text, a longer one and one of about 40 tokens (the first two also trace the export).
PROBE_TEXTS = (
    "ok",
    "a red dress for the summer evening",
    "blue running shoes for the trail, light and waterproof, with a thick sole that keeps "
    "its grip on wet rocks and mud; sizes 38 to 46, delivered in two days",
)
MIN_COSINE = 0.9999  # per probe text, torch against the graph: below it the export is refused
TORCH_REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"
EXTERNAL_DATA_BYTES = 1 << 30  # weights past this go to model.onnx.data (protobuf's 2 GB limit)
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
    fails on or whose graph differs from torch on PROBE_TEXTS, and any other module stay on
    torch; the returned reason is logged by the caller. Settings allow only dtypes in
    PRECISION.
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
        if reason := _export_once(source, folder, precision, _max_length(source), model_type):
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


def _export_once(
    source: Path, folder: Path, precision: str, max_length: int | None, model_type: str
) -> str | None:
    """Export unless another process did meanwhile: workers sharing one volume take a file
    lock around check-then-export (conversion.held), so one exports and the others wait
    and reuse it. A string says why there is no export (each process that meets it tries
    again, and falls back)."""
    with held(folder.parent / LOCK_FILE, f"ONNX export into {folder.parent}"):
        if folder.is_dir():
            return None
        _remove_stale_scratch(folder.parent)
        return _export(source, folder, precision, max_length, model_type)


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
    for fp32 in out.glob(f"{FP32_FILE}*"):  # the graph, and its external data if any
        fp32.unlink()


def _last_hidden_state(model: Any) -> Any:
    """The module torch.onnx exports: the bare transformer's last_hidden_state (a class
    made here: torch is imported only to export)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
            return out.last_hidden_state

    # eval, like the model: the exporter puts the wrapper back in the mode it finds it in,
    # and a new module is in training mode (dropout on) with its submodules
    return LastHiddenState().eval()


def _inputs(model: Any, tokenizer: Any) -> tuple[str, ...]:
    """The graph's inputs: input_ids, attention_mask, and token_type_ids where the
    tokenizer makes them and the model takes them (as the torch engine feeds it)."""
    import inspect

    names: tuple[str, ...] = ("input_ids", "attention_mask")
    takes = "token_type_ids" in inspect.signature(model.forward).parameters
    if takes and "token_type_ids" in tokenizer.model_input_names:
        names += ("token_type_ids",)
    return names


def probe_features(
    tokenizer: Any, names: tuple[str, ...], texts: tuple[str, ...] | list[str], limit: int
) -> dict[str, Any]:
    """`texts` as one batch of int64 arrays `names`, padded on the right to the longest (pad
    id 0 where the tokenizer has none) and truncated at `limit` tokens."""
    import numpy as np

    encoded = tokenizer(list(texts), truncation=True, max_length=limit)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    shape = (len(lengths), max(lengths))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    features = {
        "input_ids": np.full(shape, pad, dtype=np.int64),
        "attention_mask": np.zeros(shape, dtype=np.int64),
        "token_type_ids": np.zeros(shape, dtype=np.int64),
    }
    for row, length in enumerate(lengths):
        features["input_ids"][row, :length] = encoded["input_ids"][row]
        features["attention_mask"][row, :length] = 1
        if "token_type_ids" in encoded:
            features["token_type_ids"][row, :length] = encoded["token_type_ids"][row]
    return {name: features[name] for name in names}


def export_graph(model: Any, features: dict[str, Any], graph: Path) -> None:
    """Export `model` (a transformers base model, in eval mode) to the ONNX file `graph`
    with torch.onnx's dynamo exporter, traced on `features` (a batch with padding): inputs
    named as `features`, dynamic batch and sequence axes, one output `last_hidden_state`.
    Weights past EXTERNAL_DATA_BYTES go to `<graph>.data` beside it.

    The dynamo exporter, not the TorchScript one (dynamo=False, deprecated): the latter
    cannot trace the vmap transformers 5 builds Gemma 3's bidirectional masks with."""
    import torch

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    args = tuple(torch.from_numpy(value) for value in features.values())
    size = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    with warnings.catch_warnings():  # naming the axes: one Dim shared by every input
        warnings.filterwarnings("ignore", "# The axis name: ", UserWarning)
        torch.onnx.export(
            _last_hidden_state(model),
            args,
            str(graph),
            input_names=list(features),
            output_names=[OUTPUT],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in features},
            dynamo=True,
            external_data=size > EXTERNAL_DATA_BYTES,
            verbose=False,
        )


def probe_cosines(model: Any, features: dict[str, Any], graph: Path) -> list[float]:
    """Per probe text (row of `features`), how close the ONNX `graph` (onnxruntime, CPU)
    comes to `model` (torch): the lower of the cosines of their mean-pooled and of their
    first-token last_hidden_state, over the text's own tokens (the two poolings the runner
    computes). NaN where either output is not finite."""
    import numpy as np
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    got = session.run([OUTPUT], {k: v for k, v in features.items() if k in wanted})[0]
    with torch.inference_mode():
        tensors = {name: torch.from_numpy(value) for name, value in features.items()}
        want = model.eval()(**tensors).last_hidden_state.float().numpy()
    if got.shape != want.shape:
        return [float("nan")] * len(want)
    mask = features["attention_mask"][:, :, None] > 0
    # padding positions zeroed (np.where: a NaN there must not count)
    a, b = (np.where(mask, x.astype(np.float64), 0.0) for x in (got, want))
    return [
        float(np.minimum(_cosine(a[row].sum(0), b[row].sum(0)), _cosine(a[row, 0], b[row, 0])))
        for row in range(len(a))
    ]


def _cosine(a: Any, b: Any) -> float:
    """The cosine of two vectors; NaN unless both are finite."""
    import numpy as np

    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-30))


def probe_reason(cosines: list[float], model_type: str) -> str | None:
    """Why a graph with these probe cosines is not used; None when every one reaches
    MIN_COSINE."""
    if all(c >= MIN_COSINE for c in cosines):  # NaN fails
        return None
    worst = min(cosines, key=lambda c: -1.0 if c != c else c)
    return f"the ONNX export of {model_type} differs from torch: cosine {worst:.6f} on the probe"


def _one_line(exc: BaseException) -> str:
    """The first line of the exception at the root of `exc` (torch.onnx wraps the error
    of torch.export in a page of advice), without terminal colours, at most 200 chars."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """While exporting: the INFO records onnxscript and onnx-ir log per graph rewrite (some
    hundreds an export) and torch.onnx's warnings that torchvision's operators are not
    registered (the service installs no torchvision) are dropped; warnings pass."""
    levels = {"onnxscript": logging.WARNING, "onnx_ir": logging.WARNING}
    levels[TORCH_REGISTRATION_LOGGER] = logging.ERROR
    loggers = {logging.getLogger(name): level for name, level in levels.items()}
    before = {logger: logger.level for logger in loggers}
    for logger, level in loggers.items():
        logger.setLevel(max(level, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        for logger, level in before.items():
            logger.setLevel(level)


def _export(
    source: Path, folder: Path, precision: str, max_length: int | None, model_type: str
) -> str | None:
    """Export into a scratch folder beside `folder`, check the fp32 graph against torch on
    PROBE_TEXTS, quantise it for int8, then rename the folder into place atomically. A
    string says why not (the exporter failed, or the graph differs from torch); the scratch
    folder is removed then."""
    import time

    log.info("exporting %s to ONNX (%s) into %s, once", source, precision, folder)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=SCRATCH_PREFIX) as scratch:
        out = Path(scratch) / "model"
        out.mkdir()
        try:  # any model type the exporter cannot take (or onnxruntime not run) stays on torch
            model, tokenizer = _load(source)
            names = _inputs(model, tokenizer)
            limit = _probe_limit(model, tokenizer, max_length)
            probe = probe_features(tokenizer, names, PROBE_TEXTS, limit)
            trace = probe_features(tokenizer, names, PROBE_TEXTS[:2], limit)
            with _quiet_exporter():
                export_graph(model, trace, out / FP32_FILE)
            cosines = probe_cosines(model, probe, out / FP32_FILE)
        except Exception as exc:
            log.debug("ONNX export of %s failed", source, exc_info=True)
            return f"the ONNX exporter failed on {model_type}: {_one_line(exc)}"
        del model  # the torch weights, before quantising
        log.info(
            "ONNX export of %s against torch on the probe: cosines %s (%.1f s)",
            source,
            ", ".join(f"{c:.6f}" for c in cosines),
            time.monotonic() - started,
        )
        if reason := probe_reason(cosines, model_type):
            return reason
        shutil.copyfile(source / "config.json", out / "config.json")
        tokenizer.save_pretrained(out)  # tokenizer.json: what the runner tokenises with
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
    return None


def _load(source: Path) -> tuple[Any, Any]:
    """The bare transformer (float32, eval) and its tokenizer, as transformers loads them."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(source, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(source)


def _probe_limit(model: Any, tokenizer: Any, max_length: int | None) -> int:
    """Where the probe is truncated: the least of max_seq_length, the tokenizer's limit and
    the model's position embeddings."""
    limits = [max_length, getattr(model.config, "max_position_embeddings", None)]
    limits.append(tokenizer.model_max_length)  # about 1e30 where none is declared
    return int(min((n for n in limits if isinstance(n, int | float) and n > 0), default=512))
