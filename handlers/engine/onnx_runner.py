"""BACKEND=optimum embedders: our exported ONNX model run with onnxruntime and `tokenizers`."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from handlers.engine.collate import Collator
from handlers.engine.onnx_export import FP32_FILE, INT8_FILE
from handlers.engine.onnx_graph import OUTPUT
from handlers.engine.onnx_plan import ACTIVATIONS, OnnxPlan
from handlers.engine.seam import EmbedKey
from handlers.engine.text_tokenizer import TextTokenizer

__all__ = ["Dense", "OnnxEmbedder"]

FILES = {"fp32": FP32_FILE, "int8": INT8_FILE}
FUNCTIONS: dict[str, Callable[[NDArray[Any]], NDArray[Any]]] = {
    "identity": lambda x: x,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


class Dense:
    """A sentence-transformers Dense module in numpy: activation(x @ W.T + b), with the
    weights and activation its folder holds (model.safetensors, else pytorch_model.bin)."""

    def __init__(self, folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        weights = self._weights(folder)
        self.weight = weights["linear.weight"].astype(np.float32).T
        bias = weights.get("linear.bias")
        self.bias = None if bias is None else bias.astype(np.float32)
        self.activation = FUNCTIONS[ACTIVATIONS[config["activation_function"]]]

    @staticmethod
    def _weights(folder: Path) -> dict[str, NDArray[Any]]:
        if (folder / "model.safetensors").is_file():
            from safetensors.numpy import load_file

            return load_file(folder / "model.safetensors")
        import torch

        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        return {name: tensor.float().numpy() for name, tensor in state.items()}

    def __call__(self, x: NDArray[Any]) -> NDArray[Any]:
        y = x.astype(np.float32) @ self.weight
        return self.activation(y if self.bias is None else y + self.bias)


def _max_length(folder: Path) -> int:
    """What the torch engine truncates at: the export caps max_position_embeddings to
    sentence-transformers' max_seq_length; the tokenizer's own limit may be lower."""
    config = json.loads((folder / "config.json").read_text())
    limit = int(config.get("max_position_embeddings", 512))
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        declared = json.loads(tokenizer_config.read_text()).get("model_max_length")
        if isinstance(declared, int | float) and 0 < declared < limit:
            limit = int(declared)
    return limit


def _lower_case(tokenizer: Any) -> None:
    """Puts a Lowercase step in front of the tokenizer's normaliser, as sentence-transformers
    6 does for do_lower_case (lower-casing twice changes nothing, so no check for one)."""
    from tokenizers.normalizers import Lowercase, Sequence

    normalizer = tokenizer.normalizer
    steps: list[Any] = [] if normalizer is None else [normalizer]
    if isinstance(normalizer, Sequence):
        steps = list(cast(Any, normalizer))  # a Sequence iterates over its steps
    tokenizer.normalizer = Sequence([Lowercase(), *steps])


class OnnxEmbedder:
    """A scheduler Runner for an ONNX text embedder exported by handlers.engine.onnx_export.

    `tokenizer` reads each text as sentence-transformers 6 does (as sent; lower-cased where
    the model says do_lower_case, by a Lowercase step in front of the tokenizer's normaliser,
    as sentence-transformers adds it); `prepare` collates the inputs' Tokens (special
    tokens, truncation at the model's context length from the side the batch's EmbedKey
    names, padding to the longest input); `forward` runs the session with idle thread
    spinning off (spinning threads take the CPU the event loop needs) and reads its
    last_hidden_state; `finish` pools (mean over the attention mask, or CLS), applies the
    model's Dense layers in order and L2-normalises unless the key says normalize false.
    """

    def __init__(self, plan: OnnxPlan) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        folder = plan.folder
        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(folder / FILES[plan.precision]), options, providers=["CPUExecutionProvider"]
        )
        self._wants_types = any(i.name == "token_type_ids" for i in self.session.get_inputs())
        self.pooling = plan.pooling
        self.dense = [Dense(module) for module in plan.dense]
        rust = Tokenizer.from_file(str(folder / "tokenizer.json"))
        if plan.lower_case:
            _lower_case(rust)
        self.tokenizer = TextTokenizer(rust, _max_length(folder))
        names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
        if not self._wants_types:
            names = names[:2]
        pad_id = rust.token_to_id(self._pad_token(folder, rust))
        self.collator = Collator(self.tokenizer, pad_id or 0, names=names)  # masked anyway

    @staticmethod
    def _pad_token(folder: Path, tokenizer: Any) -> str:
        config = folder / "tokenizer_config.json"
        pad = json.loads(config.read_text()).get("pad_token") if config.is_file() else None
        if isinstance(pad, dict):
            pad = pad.get("content")
        if isinstance(pad, str) and tokenizer.token_to_id(pad) is not None:
            return pad
        return "[PAD]" if tokenizer.token_to_id("[PAD]") is not None else "<pad>"

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        """Collate the inputs' Tokens (or texts whose count failed)."""
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        feeds, tokens = self.collator(inputs, options.truncation_direction)
        return (feeds, options.normalize), tokens

    def forward(self, prepared: tuple[dict[str, NDArray[Any]], bool]) -> tuple[Any, ...]:
        feeds, normalize = prepared
        hidden = self.session.run([OUTPUT], feeds)[0]
        return hidden, feeds["attention_mask"], normalize

    def finish(self, output: tuple[NDArray[Any], NDArray[Any], bool]) -> Any:  # rows: one each
        hidden, mask, normalize = output
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(hidden.dtype)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        for layer in self.dense:
            pooled = layer(pooled)
        if not normalize:
            return pooled.astype(np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
