"""Sequence classifiers (a *ForSequenceClassification checkpoint with two or more labels):
recognised from their config, loaded with transformers on torch, run as a scheduler Runner
that gives each input's logits (a text, or a pair of texts for a CrossEncoder)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from handlers.engine import identity
from handlers.engine.collate import Collator
from handlers.engine.infinity import Loaded, import_infinity
from handlers.engine.text_tokenizer import TextTokenizer
from handlers.model_info import Classes
from handlers.model_specs import ModelSpec
from handlers.settings import Settings

__all__ = ["ClassifyStages", "classes", "is_causal_lm", "load"]

# the precisions a classifier runs in on torch; "auto" is float16 on a GPU, else float32
PRECISIONS = ("float32", "float16", "bfloat16")


def classes(path: str, revision: str | None) -> Classes | None:
    """What the model at `path` predicts, when it is a classifier: its config names a
    sequence-classification architecture with two or more labels (one label is a reranker,
    as Infinity decides). It reads pairs when sentence-transformers saved it as a
    CrossEncoder (config_sentence_transformers.json, or the `sentence_transformers` entry
    of config.json that CrossEncoders of sentence-transformers 4 and 5 write)."""
    config = identity.model_json(path, "config.json", revision) or {}
    if not any("SequenceClassification" in arch for arch in config.get("architectures") or ()):
        return None
    id2label = config.get("id2label") or {}
    if len(id2label) < 2:
        return None
    saved_as = identity.saved_model_type(path, revision)
    pairs = saved_as == "CrossEncoder" or "sentence_transformers" in config
    labels = tuple(str(id2label[str(i)]) for i in range(len(id2label)))
    multi = config.get("problem_type") == "multi_label_classification"
    return Classes(labels, pairs, multi)


def is_causal_lm(path: str, revision: str | None) -> bool:
    """Whether the model's config names a *ForCausalLM architecture (as sentence-transformers'
    CrossEncoder decides it is an LLM reranker)."""
    config = identity.model_json(path, "config.json", revision) or {}
    return any(str(arch).endswith("ForCausalLM") for arch in config.get("architectures") or ())


def load(spec: ModelSpec, settings: Settings, found: Classes) -> Loaded:
    """The classifier of `spec` loaded by transformers (blocking), as its own
    text-classification pipeline (and sentence-transformers' CrossEncoder) loads it.

    Raises:
        RuntimeError: a precision it cannot run in, or no fast tokenizer with a pad token.
    """
    import_infinity()  # waits for the preload's import of transformers (half-imported else)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = spec.dtype
    if precision == "auto":
        precision = "float16" if device.startswith("cuda") else "float32"
    if precision not in PRECISIONS:
        raise RuntimeError(f"classifiers run in {', '.join(PRECISIONS)}, not {precision}")
    options = {"revision": spec.revision, "trust_remote_code": settings.trust_remote_code}
    hf_tokenizer = AutoTokenizer.from_pretrained(spec.path, **options)
    model = AutoModelForSequenceClassification.from_pretrained(
        spec.path, dtype=getattr(torch, precision), **options
    )
    model = model.to(device).eval()
    if not getattr(hf_tokenizer, "is_fast", False) or hf_tokenizer.pad_token_id is None:
        raise RuntimeError("classifiers are served with a fast tokenizer that has a pad token")
    positions = getattr(model.config, "max_position_embeddings", None)
    limit = int(hf_tokenizer.model_max_length)
    if positions:
        limit = min(limit, int(positions))
    tokenizer = TextTokenizer(hf_tokenizer.backend_tokenizer, limit)
    runner = ClassifyStages(model, Collator.of(tokenizer, hf_tokenizer))
    capabilities = frozenset({"classify"})
    return Loaded([runner], capabilities, "torch", tokenizer, precision, None, True, (), found)


class ClassifyStages:
    """A classifier as a scheduler Runner: its inputs' Tokens (texts, or pairs of them)
    collated as its tokenizer would (truncated at the context length, longest text of a
    pair first), one forward pass, each input's logits as float32 (the core applies the
    activation). Owned by the scheduler's threads."""

    def __init__(self, model: Any, collator: Collator) -> None:
        self.model = model
        self.collator = collator

    def prepare(self, inputs: list[Any], key: Hashable) -> tuple[Any, list[int]]:
        import torch

        features, counts = self.collator(inputs)
        device = self.model.device
        return {name: torch.from_numpy(v).to(device) for name, v in features.items()}, counts

    def forward(self, features: Any) -> Any:
        import torch

        with torch.no_grad():
            return self.model(**features).logits.float().cpu().numpy()

    def finish(self, output: Any) -> list[Any]:
        return list(output)
