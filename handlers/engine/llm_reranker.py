"""Causal-LM rerankers (Qwen3-Reranker's original checkpoints, mxbai-rerank-v2): the
CrossEncoder of sentence-transformers 6 (a text-generation Transformer and a LogitScore, yes
against no at the last position), loaded and run by the library itself as a scheduler Runner."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from handlers.engine.infinity import Loaded
from handlers.engine.st_runner import open_model
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["CAPABILITIES", "LlmRerankStages", "load"]

CAPABILITIES = frozenset({"rerank", "rerank_instruction"})


def load(spec: ModelSpec, settings: Settings) -> Loaded:
    """The CrossEncoder of `spec`, loaded by sentence-transformers 6 (blocking). It has no
    tokenizer of ours: its pre-process formats each pair with the model's own template, so
    documents are truncated by it, not split into windows, and /v1/tokenize is unavailable."""
    model, _, dtype = open_model("CrossEncoder", spec, settings)
    return Loaded([LlmRerankStages(model)], CAPABILITIES, "torch", None, dtype)


class LlmRerankStages:
    """A causal-LM CrossEncoder as a scheduler Runner, as its `predict` computes before the
    activation: (query, document) pairs through the model's own `preprocess` with the
    batch's instruction (its key; else the model's default prompt) as the prompt, its
    modules, each pair's score (the LogitScore: logit of yes minus logit of no). Owned by
    the scheduler's threads."""

    def __init__(self, model: Any) -> None:
        self.model = model
        default = model.default_prompt_name
        self.default_prompt = model.prompts.get(default) if default else None

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        prompt = key if isinstance(key, str) else self.default_prompt
        pairs = [(str(query), str(doc)) for query, doc in inputs]
        features = self.model.preprocess(pairs, prompt=prompt)
        counts = [int(n) for n in features["attention_mask"].sum(dim=1).tolist()]
        return features, counts

    def forward(self, features: Any) -> Any:
        import torch
        from sentence_transformers.util import batch_to_device

        with torch.inference_mode():
            scores = self.model(batch_to_device(features, self.model.device))["scores"]
            return scores.float().reshape(-1).cpu().tolist()

    def finish(self, output: Any) -> list[float]:
        return list(output)
