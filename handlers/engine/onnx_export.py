"""Exporting one embedder to ONNX once into the model cache: under a cross-process lock,
checked against torch on the probe, quantised for int8, moved into place atomically."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from handlers.engine.conversion import held
from handlers.engine.onnx_graph import (
    PROBE_TEXTS,
    export_graph,
    input_names,
    probe_cosines,
    probe_features,
    probe_reason,
    quiet_exporter,
)

__all__ = ["FP32_FILE", "INT8_FILE", "export_once"]

log = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model_quantized.onnx"
SCRATCH_PREFIX = ".export-"  # an export in progress, or left by a process that died in one
LOCK_FILE = ".export.lock"  # beside the precision folders of one model


def export_once(
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


def _one_line(exc: BaseException) -> str:
    """The first line of the exception at the root of `exc` (torch.onnx wraps the error
    of torch.export in a page of advice), without terminal colours, at most 200 chars."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


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
            names = input_names(model, tokenizer)
            limit = _probe_limit(model, tokenizer, max_length)
            probe = probe_features(tokenizer, names, PROBE_TEXTS, limit)
            trace = probe_features(tokenizer, names, PROBE_TEXTS[:2], limit)
            with quiet_exporter():
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
