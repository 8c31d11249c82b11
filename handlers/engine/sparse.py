"""Sparse encoders (sentence-transformers 6's SparseEncoder: SPLADE, inference-free document
encoders behind a Router): loaded by the library itself, run as a scheduler Runner that
gives each input's active dimensions."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from handlers.engine.infinity import Loaded
from handlers.engine.seam import EmbedKey, SparseVector
from handlers.engine.st_runner import open_model, preprocess_texts, text_tokenizer
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["SparseStages", "load"]


def load(spec: ModelSpec, settings: Settings) -> Loaded:
    """The SparseEncoder of `spec`, loaded by sentence-transformers 6 (blocking)."""
    model, tokenizer, dtype = open_model("SparseEncoder", spec, settings)
    runner = SparseStages(model, text_tokenizer(model))
    return Loaded([runner], frozenset({"sparse_embed"}), "torch", tokenizer, dtype)


class SparseStages:
    """A SparseEncoder as a scheduler Runner, as its encode_query / encode_document compute:
    the texts through the model's own `preprocess` with the batch's task (a Router picks
    its query or document route by it) and truncation side, its modules, then each row's
    non-zero dimensions with their vocabulary tokens. Owned by the scheduler's threads."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        texts = [str(text) for text in inputs]
        side = options.truncation_direction
        features, counts = preprocess_texts(
            self.model, self.tokenizer, texts, side, task=options.task
        )
        return (features, options.task), counts

    def forward(self, prepared: tuple[Any, str | None]) -> Any:
        import torch
        from sentence_transformers.util import batch_to_device

        features, task = prepared
        with torch.inference_mode():
            features = batch_to_device(features, self.model.device)
            return self.model(features, task=task)["sentence_embedding"].float().cpu()

    def finish(self, output: Any) -> list[SparseVector]:
        vectors = []
        for row in output:
            indices = row.nonzero().flatten().tolist()
            values = row[indices].tolist()
            tokens = self.tokenizer.convert_ids_to_tokens(indices)
            vectors.append(SparseVector(indices, values, tokens))
        return vectors
