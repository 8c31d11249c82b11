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

__all__ = ["MultiVectorStages", "load", "pooled"]

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
    attention mask keeps them, pooled as the key asks. Owned by the scheduler's threads."""

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
        return (features, options), counts

    def forward(self, prepared: tuple[Any, EmbedKey]) -> tuple[list[Any], float]:
        import torch
        from sentence_transformers.util import batch_to_device

        features, options = prepared
        with torch.inference_mode():
            features = self.model(batch_to_device(features, self.model.device), task=options.task)
            masks = features["attention_mask"].bool()
            tokens = features["token_embeddings"]
            rows = [row[m].float().cpu().numpy() for row, m in zip(tokens, masks, strict=True)]
        return rows, options.pool_factor

    def finish(self, output: tuple[list[Any], float]) -> list[Any]:
        rows, factor = output
        return pooled(rows, factor)


def pooled(matrices: list[Any], factor: float, protected: int = 1) -> list[Any]:
    """Each input's token vectors pooled to about 1/`factor` of them as sentence-transformers
    6's HierarchicalTokenPooling computes (Ward clustering on cosine distance, each cluster's
    mean, all normalised; the first `protected` vectors kept out of the clustering), whatever
    the task; a factor of 1: as they are."""
    if factor <= 1:
        return matrices
    import torch
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

    pooling = HierarchicalTokenPooling(
        factor, num_protected_tokens=protected, tasks=["query", "document"]
    )
    return [pooling.pool_one(torch.from_numpy(matrix)).numpy() for matrix in matrices]
