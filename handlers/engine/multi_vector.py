"""Multi-vector (late-interaction, ColBERT) encoders: sentence-transformers 6's
MultiVectorEncoder, loaded by the library itself and run as a scheduler Runner that gives
each input's token vectors."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from handlers.engine.infinity import Loaded
from handlers.engine.seam import EmbedKey
from handlers.engine.st_runner import open_model, preprocess_texts, text_tokenizer
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["MultiVectorStages", "load"]

CAPABILITIES = frozenset({"multi_vector_embed", "rerank"})  # rerank: by MaxSim


def load(spec: ModelSpec, settings: Settings) -> Loaded:
    """The MultiVectorEncoder of `spec`, loaded by sentence-transformers 6 (blocking)."""
    model, tokenizer, dtype = open_model("MultiVectorEncoder", spec, settings)
    runner = MultiVectorStages(model, text_tokenizer(model))
    similarity = str(model.similarity_fn_name)
    return Loaded([runner], CAPABILITIES, "torch", tokenizer, dtype, similarity=similarity)


class MultiVectorStages:
    """A MultiVectorEncoder as a scheduler Runner, as its encode_query / encode_document /
    encode compute: the texts through the model's own `preprocess` with the batch's task
    (its prompt of that name, prefix token, query length and expansion) and truncation side,
    its modules with that task, then each input's token vectors where the (skiplist-masked)
    attention mask keeps them. Owned by the scheduler's threads."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        options = key if isinstance(key, EmbedKey) else EmbedKey()
        task = options.task
        prompt = self.model.prompts.get(task) if task else None
        texts = [str(text) for text in inputs]
        features, counts = preprocess_texts(
            self.model,
            self.tokenizer,
            texts,
            options.truncation_direction,
            prompt=prompt or None,
            task=task,
        )
        return (features, task), counts

    def forward(self, prepared: tuple[Any, str | None]) -> list[Any]:
        import torch
        from sentence_transformers.util import batch_to_device

        features, task = prepared
        with torch.inference_mode():
            features = self.model(batch_to_device(features, self.model.device), task=task)
            masks = features["attention_mask"].bool()
            tokens = features["token_embeddings"]
            return [
                row[mask].float().cpu().numpy() for row, mask in zip(tokens, masks, strict=True)
            ]

    def finish(self, output: list[Any]) -> list[Any]:
        return output
