"""The tokenize capability: a private copy of a model's fast tokenizer, and /v1/tokenize replies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "Counter",
    "Encoding",
    "SlowCounter",
    "TextTokenizer",
    "Tokenizer",
    "input_lengths",
    "st_text",
    "tokenize_data",
]


def st_text(text: str, lower: bool) -> str:
    """A text as sentence-transformers' Transformer module tokenises it: stripped, and
    lower-cased where the model says do_lower_case."""
    return text.strip().lower() if lower else text.strip()


class Encoding(Protocol):
    """What the core reads of one tokenised text (a `tokenizers.Encoding`)."""

    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]  # character offsets into the text; (0, 0) for specials
    word_ids: list[int | None]


class Counter(Protocol):
    """Counts tokens as the model's pre-process sees each text (truncate=false)."""

    max_length: int  # the model's context length in tokens, special tokens included

    def count(self, texts: list[str]) -> list[int]: ...


class Tokenizer(Protocol):
    """A model's tokenizer as the core uses it: thread-safe reads, never truncating."""

    max_length: int  # the model's context length in tokens, special tokens included
    pair_specials: int  # special tokens added around a (query, document) pair

    def encode(self, texts: list[str], add_special_tokens: bool = True) -> list[Encoding]: ...

    def count(self, texts: list[str]) -> list[int]: ...


def input_lengths(counter: Counter) -> Callable[[list[Any]], list[int]]:
    """Tokens per scheduler input as the model sees it, at most its context length: a
    text's count, a (query, document) pair's two counts summed, 1 for an image."""

    def texts(item: Any) -> tuple[str, ...]:
        if isinstance(item, str):
            return (item,)
        return tuple(t for t in item if isinstance(t, str)) if isinstance(item, tuple) else ()

    def measure(items: list[Any]) -> list[int]:
        unique = list(dict.fromkeys(t for item in items for t in texts(item)))
        counts = dict(zip(unique, counter.count(unique), strict=True))
        return [min(counter.max_length, sum(counts[t] for t in texts(item))) or 1 for item in items]

    return measure


class TextTokenizer:
    """A copy of a model's `tokenizers.Tokenizer`, separate from the one the scheduler's
    prepare thread uses (transformers sets truncation and padding on that one per call);
    this copy never truncates or pads. Call it off the event loop."""

    def __init__(self, tokenizer: Any, max_length: int, lower: bool = False) -> None:
        from tokenizers import Tokenizer as RustTokenizer

        self._lower = lower  # sentence-transformers' do_lower_case
        self._tokenizer = RustTokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_length = max_length
        post = self._tokenizer.post_processor
        self.pair_specials = post.num_special_tokens_to_add(True) if post is not None else 0

    def encode(self, texts: list[str], add_special_tokens: bool = True) -> list[Encoding]:
        return self._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)

    def count(self, texts: list[str]) -> list[int]:
        """Tokens per text as the model's pre-process sees it (stripped, lower-cased where
        the model says so), special tokens included, never truncated."""
        return [len(e.ids) for e in self.encode([st_text(t, self._lower) for t in texts])]


class SlowCounter:
    """Counts with a model's slow (Python) tokenizer, for models that have no fast one
    (SigLIP's SentencePiece tokenizer): a private copy, untruncated, special tokens
    included. Slow tokenizers give no character offsets, so /v1/tokenize and rerank
    windows stay unavailable for such models. Call it off the event loop."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        import copy

        self._tokenizer = copy.deepcopy(tokenizer)
        self.max_length = max_length

    def count(self, texts: list[str]) -> list[int]:
        encoded = self._tokenizer(texts, add_special_tokens=True, truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]


def tokenize_data(encodings: list[Encoding]) -> list[dict[str, Any]]:
    """The `data` of a /v1/tokenize reply: per input its ids, token strings, character
    offsets ([start, end) into the input; [0, 0] for special tokens) and count."""
    return [
        {
            "object": "tokens",
            "index": index,
            "ids": list(encoding.ids),
            "tokens": list(encoding.tokens),
            "offsets": [list(span) for span in encoding.offsets],
            "count": len(encoding.ids),
        }
        for index, encoding in enumerate(encodings)
    ]
