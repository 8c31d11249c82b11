"""Causal-LM rerankers (Qwen3-Reranker's original checkpoints, mxbai-rerank-v2): the
CrossEncoder of sentence-transformers 6 (a text-generation Transformer and a LogitScore, yes
against no at the last position), loaded and run by the library itself as a scheduler Runner."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from handlers.engine.infinity import Loaded
from handlers.engine.st_runner import open_model
from handlers.engine.windows import TextWindows
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["CAPABILITIES", "LlmRerankStages", "load"]

CAPABILITIES = frozenset({"rerank", "rerank_instruction"})


def load(spec: ModelSpec, settings: Settings) -> Loaded:
    """The CrossEncoder of `spec`, loaded by sentence-transformers 6 (blocking). Its
    pre-process formats each pair with the model's own template, so it has no tokenizer of
    ours to count or tokenise with (/v1/tokenize is unavailable); a long document is read in
    windows of its text (windows.TextWindows) next to the rendered query."""
    model, tokenizer, dtype = open_model("CrossEncoder", spec, settings)
    stages = LlmRerankStages(model)
    planner = None
    if tokenizer is not None and model.max_seq_length:
        planner = TextWindows(tokenizer, int(model.max_seq_length), stages.overhead).plan
    return Loaded([stages], CAPABILITIES, "torch", None, dtype, planner=planner)


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
        # the model's tokenizer is not safe to call from two threads at once: the scheduler's
        # and the window planner's calls of `preprocess` take turns
        self._preprocessing = threading.Lock()

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        prompt = key if isinstance(key, str) else self.default_prompt
        pairs = [(str(query), str(doc)) for query, doc in inputs]
        with self._preprocessing:
            features = self.model.preprocess(pairs, prompt=prompt)
        counts = [int(n) for n in features["attention_mask"].sum(dim=1).tolist()]
        return features, counts

    def overhead(self, query: str, instruction: str | None) -> int:
        """The tokens of the pair of `query` and an empty document as the model renders it
        with `instruction` (else its default prompt): what a window shares the context with."""
        prompt = instruction if instruction is not None else self.default_prompt
        with self._preprocessing:
            features = self.model.preprocess([(query, "")], prompt=prompt)
        return int(features["attention_mask"].sum())

    def forward(self, features: Any) -> Any:
        import torch
        from sentence_transformers.util import batch_to_device

        with torch.inference_mode():
            scores = self.model(batch_to_device(features, self.model.device))["scores"]
            return scores.float().reshape(-1).cpu().tolist()

    def finish(self, output: Any) -> list[float]:
        return list(output)
