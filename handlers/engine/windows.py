"""Rerank windows: each document cut into overlapping token windows that fit the reranker's
context next to the query, each text tokenised once (a model that formats each pair with its
own template, an LLM reranker, reads windows as the document's text they cover)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from handlers.engine.seam import Windows
from handlers.engine.text_tokenizer import Tokenizer, Tokens
from handlers.errors import ErrorKind, ServiceError

__all__ = ["DEFAULT_MAX_TOKENS_PER_DOC", "WINDOW_OVERLAP", "TextWindows", "plan_windows"]

WINDOW_OVERLAP = 32
"""Tokens two neighbouring windows of a document share (at most half the window)."""
DEFAULT_MAX_TOKENS_PER_DOC = 4096
"""Tokens of each document read when the request sets no max_tokens_per_doc (Cohere v2's)."""


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
    overlap, limit = _reading(room, max_tokens, max_chunks)
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


def _reading(room: int, max_tokens: int | None, max_chunks: int | None) -> tuple[int, int]:
    """The overlap of windows of `room` tokens, and how many tokens of a document are read."""
    overlap = min(WINDOW_OVERLAP, room // 2)
    if max_chunks is not None:
        max_tokens = room + (max_chunks - 1) * (room - overlap)
    return overlap, max_tokens or DEFAULT_MAX_TOKENS_PER_DOC


class TextWindows:
    """Windows for a model that formats each (query, document) pair with its own template
    (an LLM reranker): a window holds what the model's context leaves next to the rendered
    pair of the query and an empty document (`overhead(query, instruction)`, in tokens),
    cut and read as above from the document's tokens by `tokenizer` (the model's, without
    special tokens), and handed to the model as the document's text those tokens cover.
    Blocking."""

    def __init__(
        self, tokenizer: Tokenizer, max_length: int, overhead: Callable[[str, str | None], int]
    ) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.overhead = overhead

    def plan(
        self,
        query: str,
        docs: list[str],
        max_tokens: int | None,
        max_chunks: int | None,
        instruction: str | None,
    ) -> Windows:
        """Raises:
        ServiceError: TOO_LARGE when the query and the template leave no room."""
        pair = self.overhead(query, instruction)
        room = self.max_length - pair
        if room < 1:
            raise ServiceError(
                ErrorKind.TOO_LARGE,
                f"The query in the model's prompt template takes {pair} of its "
                f"{self.max_length} tokens: it leaves no room for a document. Shorten the query.",
                param="query",
                code="query_too_long",
            )
        overlap, limit = _reading(room, max_tokens, max_chunks)
        items: list[str] = []
        owners: list[int] = []
        lengths: list[int] = []
        encodings = self.tokenizer.encode(docs, add_special_tokens=False)
        for index, (doc, read) in enumerate(zip(docs, encodings, strict=True)):
            offsets = read.offsets
            total = len(offsets)
            length = min(total, limit)
            if length == total and length <= room:  # read as it is
                items.append(doc)
                owners.append(index)
                lengths.append(pair + total)
                continue
            spans = list(_spans(read.word_ids, length, room, overlap))
            # byte-level BPE offsets take in the space before a word: a window is its words
            items.extend(doc[offsets[s.start][0] : offsets[s.stop - 1][1]].strip() for s in spans)
            owners.extend([index] * len(spans))
            lengths.extend(pair + len(span) for span in spans)
        return Windows(query, items, owners, lengths)
