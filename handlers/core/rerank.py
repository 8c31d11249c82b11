"""Rerank without truncation: document texts as clients send them, overlapping token windows."""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from handlers.engine.text_tokenizer import Tokenizer, Tokens
from handlers.errors import ErrorKind, ServiceError

__all__ = [
    "DEFAULT_MAX_TOKENS_PER_DOC",
    "WINDOW_OVERLAP",
    "Windows",
    "document_texts",
    "plan_windows",
    "ranked_results",
]

WINDOW_OVERLAP = 32
"""Tokens two neighbouring windows of a document share (at most half the window)."""
DEFAULT_MAX_TOKENS_PER_DOC = 4096
"""Tokens of each document read when the request sets no max_tokens_per_doc (Cohere v2's)."""


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


@dataclass(frozen=True)
class Windows:
    """What the model scores next to the query: the query and each window as the model
    reads them (Tokens, a window's its document's token slice; the texts where the model
    has no fast tokenizer), the document each window reads, and the tokens of each
    (query, window) pair, special tokens included (None: not counted)."""

    query: str | Tokens
    items: list[str | Tokens]
    owners: list[int]
    lengths: list[int] | None = None

    def best(self, scores: list[float], documents: int) -> list[float]:
        """Each document's score: its best window's."""
        best = [-math.inf] * documents
        for owner, score in zip(self.owners, scores, strict=True):
            best[owner] = max(best[owner], score)
        return best


def _spans(word_ids: list[int | None], length: int, room: int, overlap: int) -> Iterator[range]:
    """Token ranges of at most `room` tokens covering the first `length`, each starting
    `overlap` tokens before its predecessor ends; cuts fall between words where a word
    boundary lies inside the window (otherwise inside a word too long for it)."""
    starts = [
        t for t in range(length) if t == 0 or word_ids[t] is None or word_ids[t] != word_ids[t - 1]
    ]

    def boundary(limit: int, after: int) -> int | None:
        """The last word start in (after, limit]."""
        i = bisect.bisect_right(starts, limit) - 1
        return starts[i] if i >= 0 and starts[i] > after else None

    start = 0
    while True:
        if start + room >= length:
            yield range(start, length)
            return
        end = boundary(start + room, start) or start + room
        yield range(start, end)
        target = end - overlap
        start = boundary(target, start) or (target if target > start else end)


def plan_windows(
    tokenizer: Tokenizer | None,
    query: str,
    docs: list[str],
    max_tokens: int | None,
    max_chunks: int | None,
) -> Windows:
    """Split each document into windows that fit the model's context next to the query.

    A window holds `max_length - pair special tokens - query tokens` tokens; neighbours
    overlap by WINDOW_OVERLAP tokens (at most half a window). A document is read up to
    `max_tokens` tokens (DEFAULT_MAX_TOKENS_PER_DOC), or `max_chunks` windows. A document
    that fits is scored as it is. Each text is tokenised once, here: a window is a slice
    of its document's tokens, and the model reads these Tokens (they are not tokenised
    again). Blocking: call it off the event loop.

    Raises:
        ServiceError: TOO_LARGE when the query leaves no room for a window (the schema
            refuses both limits at once).
    """
    if tokenizer is None:  # no fast tokenizer: the model's pre-process truncates
        return Windows(query, list(docs), list(range(len(docs))))
    query_read = tokenizer.tokens([query])[0]
    query_tokens = query_read.count - tokenizer.specials
    room = tokenizer.max_length - tokenizer.pair_specials - query_tokens
    if room < 1:
        raise ServiceError(
            ErrorKind.TOO_LARGE,
            f"The query has {query_tokens} tokens; with {tokenizer.pair_specials} special "
            f"tokens it leaves no room for a document in the model's {tokenizer.max_length} "
            "tokens. Shorten the query.",
            param="query",
            code="query_too_long",
        )
    overlap = min(WINDOW_OVERLAP, room // 2)
    if max_chunks is not None:
        max_tokens = room + (max_chunks - 1) * (room - overlap)
    limit = max_tokens or DEFAULT_MAX_TOKENS_PER_DOC
    items: list[str | Tokens] = []
    owners: list[int] = []
    lengths: list[int] = []
    pair = query_tokens + tokenizer.pair_specials
    for index, read in enumerate(tokenizer.tokens(docs)):
        total = read.count - tokenizer.specials
        length = min(total, limit)
        if length == total and length <= room:
            items.append(read)
            owners.append(index)
            lengths.append(pair + length)
            continue
        spans = list(_spans(read.encoding.word_ids, length, room, overlap))
        items.extend(tokenizer.windows(read, spans))
        owners.extend([index] * len(spans))
        lengths.extend(pair + len(span) for span in spans)
    return Windows(query_read, items, owners, lengths)


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
