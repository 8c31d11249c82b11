"""Rerank's documents and results: what the model reads of each document, and the ranked reply."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from handlers.errors import ErrorKind, ServiceError

__all__ = ["document_texts", "ranked_results"]


def _field(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def document_texts(documents: list[Any], rank_fields: list[str] | None) -> list[str]:
    """What the model reads of each document: a string as it is; an object's `text` (a
    string, as the schema checks), or, with `rank_fields`, one `name: value` line per
    named field in that order (values that are not strings as JSON).

    Raises:
        ServiceError: INVALID naming the first document that lacks a field it needs.
    """
    texts = []
    for index, doc in enumerate(documents):
        if isinstance(doc, str):
            texts.append(doc)
            continue
        names = rank_fields or ["text"]
        missing = [name for name in names if name not in doc]
        if missing:
            hint = "" if rank_fields else " (or name the fields to read with rank_fields)"
            raise ServiceError(
                ErrorKind.INVALID,
                f"documents[{index}]: the object has no {missing[0]!r} field{hint}.",
                param="documents",
            )
        if rank_fields:
            texts.append("\n".join(f"{name}: {_field(doc[name])}" for name in rank_fields))
        else:
            texts.append(doc["text"])
    return texts


def ranked_results(
    scores: list[float], raw: bool, top_n: int | None, documents: list[Any] | None
) -> list[dict[str, Any]]:
    """Results sorted by score, highest first (sigmoid unless `raw`); each result's
    `document` is the one at its index in `documents`, when given (the reply's shapes)."""
    if not raw:
        scores = (1.0 / (1.0 + np.exp(-np.asarray(scores, dtype=np.float64)))).tolist()
    ranked = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:top_n]
    results = []
    for index in ranked:
        result: dict[str, Any] = {"index": index, "relevance_score": scores[index]}
        if documents is not None:
            result["document"] = documents[index]
        results.append(result)
    return results
