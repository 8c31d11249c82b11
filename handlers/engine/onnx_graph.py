"""A transformer's last_hidden_state as an ONNX graph: torch.onnx's export of it, and its
check against torch on a probe."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "MIN_COSINE",
    "OUTPUT",
    "PROBE_TEXTS",
    "export_graph",
    "input_names",
    "probe_cosines",
    "probe_features",
    "probe_reason",
    "quiet_exporter",
]

OUTPUT = "last_hidden_state"  # the graph's one output, what the runner (onnx_runner) pools
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


def _last_hidden_state(model: Any) -> Any:
    """The module torch.onnx exports: the bare transformer's last_hidden_state (a class
    made here: torch is imported only to export)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
            return out.last_hidden_state

    # eval, like the model: the exporter puts the wrapper back in the mode it finds it in,
    # and a new module is in training mode (dropout on) with its submodules
    return LastHiddenState().eval()


def input_names(model: Any, tokenizer: Any) -> tuple[str, ...]:
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


@contextmanager
def quiet_exporter() -> Iterator[None]:
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
