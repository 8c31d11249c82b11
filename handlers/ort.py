"""BACKEND=optimum embedders: our exported ONNX model run with onnxruntime and `tokenizers`."""

from __future__ import annotations

import json
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np

from .onnx import FP32_FILE, INT8_FILE
from .stages import EmbedKey

__all__ = ["OnnxEmbedder"]

FILES = {"fp32": FP32_FILE, "int8": INT8_FILE}


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


class OnnxEmbedder:
    """A scheduler Runner for an ONNX text embedder exported by handlers.onnx.

    `prepare` tokenises with the model's fast tokenizer (special tokens, truncation at the
    model's context length from the side the batch's EmbedKey names, padding to the longest
    input); `forward` runs the session with idle thread spinning off (spinning threads take
    the CPU the event loop needs); `finish` pools (mean over the attention mask, or CLS)
    and L2-normalises unless the key says normalize false.
    """

    def __init__(self, folder: Path, precision: str, pooling: str) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(folder / FILES[precision]), options, providers=["CPUExecutionProvider"]
        )
        self._wants_types = any(i.name == "token_type_ids" for i in self.session.get_inputs())
        self.pooling = pooling
        self.max_length = _max_length(folder)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_length)
        pad = self._pad_token(folder, tokenizer)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad), pad_token=pad)
        self.tokenizer = tokenizer

    @staticmethod
    def _pad_token(folder: Path, tokenizer: Any) -> str:
        config = folder / "tokenizer_config.json"
        pad = json.loads(config.read_text()).get("pad_token") if config.is_file() else None
        if isinstance(pad, dict):
            pad = pad.get("content")
        if isinstance(pad, str) and tokenizer.token_to_id(pad) is not None:
            return pad
        return "[PAD]" if tokenizer.token_to_id("[PAD]") is not None else "<pad>"

    def prepare(self, inputs: list[str], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        self.tokenizer.enable_truncation(self.max_length, direction=options.truncation_direction)
        encodings = self.tokenizer.encode_batch(inputs)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
        }
        if self._wants_types:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        return (feeds, options.normalize), mask.sum(axis=1).tolist()

    def forward(self, prepared: tuple[dict[str, np.ndarray], bool]) -> tuple[Any, ...]:
        feeds, normalize = prepared
        hidden = self.session.run(None, feeds)[0]  # last_hidden_state
        return hidden, feeds["attention_mask"], normalize

    def finish(self, output: tuple[np.ndarray, np.ndarray, bool]) -> np.ndarray:
        hidden, mask, normalize = output
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(hidden.dtype)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        if not normalize:
            return pooled.astype(np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
