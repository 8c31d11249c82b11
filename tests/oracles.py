"""Independent oracles: what a model itself says, computed with transformers in the test."""

from __future__ import annotations

import math
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

TOLERANCE = 1e-4
MAX_TOKENS = 128  # the tiny models' max_seq_length: where the engines truncate


@cache
def _tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def usage_tokens(folder: Path, texts: list[str], query: str | None = None) -> int:
    """What `usage` must say: tokens by the model's own tokenizer, special tokens included,
    each input truncated at MAX_TOKENS. With `query`, each text is a rerank document counted
    together with the query as one pair. Images count no tokens: leave them out of `texts`."""
    if not texts:
        return 0
    first = [query] * len(texts) if query is not None else texts
    second = texts if query is not None else None
    ids = _tokenizer(folder)(first, second, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    return sum(map(len, ids))


@cache
def _cross_encoder(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    return _tokenizer(folder), model


def rerank_scores(folder: Path, query: str, docs: list[str], raw_scores: bool) -> list[float]:
    """The reranker's logit for each (query, document) pair, one pair at a time; through a
    sigmoid unless `raw_scores` (what Infinity's cross-encoder reports)."""
    import torch

    tokenizer, model = _cross_encoder(folder)
    with torch.no_grad():
        logits = [
            model(**tokenizer(query, doc, truncation=True, return_tensors="pt")).logits[0, 0]
            for doc in docs
        ]
    return [x.item() if raw_scores else 1 / (1 + math.exp(-x.item())) for x in logits]


def assert_rerank_matches(
    folder: Path, request: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    """`results` of a rerank `request` agree with the oracle: each score matches the oracle's
    for the document at its `index`, the order is the oracle's, `top_n` cut, and `document`
    is that request document exactly when it was asked for."""
    docs = request.get("documents", request.get("docs"))
    raw = request.get("raw_scores", False)
    expected = rerank_scores(folder, request["query"], docs, raw)
    assert all(b - a > 10 * TOLERANCE for a, b in pairwise(sorted(expected))), "oracle too flat"
    order = sorted(range(len(docs)), key=lambda i: expected[i], reverse=True)
    assert [r["index"] for r in results] == order[: request.get("top_n")], (results, expected)
    for result in results:
        assert abs(result["relevance_score"] - expected[result["index"]]) <= TOLERANCE
    with_docs = request.get("return_documents", request.get("return_docs", False))
    assert [r.get("document") for r in results] == [
        docs[i] if with_docs else None for i in order[: request.get("top_n")]
    ]
