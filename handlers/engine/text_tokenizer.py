"""Texts tokenised once: a private copy of a model's fast tokenizer, its Tokens, the
scheduler's measuring step, and /v1/tokenize replies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "Counter",
    "Encoding",
    "Measure",
    "SlowTokenizer",
    "TextTokenizer",
    "Tokenizer",
    "Tokens",
    "input_lengths",
    "input_tokens",
    "tokenize_data",
]

Measure = Callable[[list[Any]], tuple[list[Any], list[int]]]
"""A scheduler's measuring step: its inputs as the model's stages take them, and the tokens
of each."""


class Encoding(Protocol):
    """What the core reads of one tokenised text (a `tokenizers.Encoding`)."""

    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]  # character offsets into the text; (0, 0) for specials
    word_ids: list[int | None]
    special_tokens_mask: list[int]  # 1 for each special token


class Counter(Protocol):
    """Tokenises texts as the model's pre-process reads them (TextTokenizer for a fast
    tokenizer, SlowTokenizer for a slow one): their Tokens, whose counts truncate=false
    checks and the scheduler batches by."""

    max_length: int  # the model's context length in tokens, special tokens included
    specials: int  # special tokens added around one text
    pair_specials: int  # special tokens added around a (query, document) pair

    def tokens(self, texts: list[str]) -> list[Tokens]: ...


class Tokenizer(Protocol):
    """A model's tokenizer as the core uses it: thread-safe reads, never truncating."""

    max_length: int  # the model's context length in tokens, special tokens included
    specials: int  # special tokens added around one text
    pair_specials: int  # special tokens added around a (query, document) pair

    def encode(self, texts: list[str], add_special_tokens: bool = True) -> list[Encoding]: ...

    def tokens(self, texts: list[str]) -> list[Tokens]: ...

    def windows(self, tokens: Tokens, spans: list[range]) -> list[Tokens]: ...


@dataclass(frozen=True, eq=False)
class Tokens:
    """A text tokenised once, as the model's pre-process reads it, untruncated and without
    special tokens; the model's inputs are built from it (collate.Collator) without
    tokenising the text again."""

    encoding: Any  # a tokenizers.Encoding (a slow tokenizer's: the ids), no special tokens
    count: int  # tokens the model reads for it alone, its special tokens included


class TextTokenizer:
    """A copy of a model's `tokenizers.Tokenizer`, separate from the one the model's own
    pre-process uses (transformers sets truncation and padding on that one per call);
    this copy never truncates or pads. Thread-safe; call it off the event loop.

    Texts reach it as sent, as every model's pre-process hands them to its tokenizer on
    sentence-transformers 6 (which no longer strips them; its `do_lower_case` is a Lowercase
    step in the tokenizer's own normaliser, which this copy carries)."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self._json = tokenizer.to_str()
        self._tokenizer = self.copy()
        self.max_length = max_length
        post = self._tokenizer.post_processor
        self.specials = post.num_special_tokens_to_add(False) if post is not None else 0
        self.pair_specials = post.num_special_tokens_to_add(True) if post is not None else 0

    def copy(self) -> Any:
        """A new `tokenizers.Tokenizer` with this one's vocabulary and pipeline, neither
        truncating nor padding (for a thread that sets its own truncation)."""
        from tokenizers import Tokenizer as RustTokenizer

        tokenizer = RustTokenizer.from_str(self._json)
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def encode(self, texts: list[str], add_special_tokens: bool = True) -> list[Encoding]:
        """Texts tokenised as they are, untruncated."""
        encodings: list[Encoding] = self._tokenizer.encode_batch(
            texts, add_special_tokens=add_special_tokens
        )
        return encodings

    def decode(self, ids: list[list[int]], skip_special_tokens: bool) -> list[str]:
        """Each id list as text."""
        texts: list[str] = self._tokenizer.decode_batch(
            ids, skip_special_tokens=skip_special_tokens
        )
        return texts

    def tokens(self, texts: list[str]) -> list[Tokens]:
        """Each text as the model's pre-process reads it, tokenised once."""
        encodings = self.encode(texts, add_special_tokens=False)
        return [Tokens(e, len(e.ids) + self.specials) for e in encodings]

    def windows(self, tokens: Tokens, spans: list[range]) -> list[Tokens]:
        """The token positions of each span of a tokenised text, as Tokens of their own.

        Each is merged from one-token parts of the text's encoding: a truncated copy would
        carry the rest of the text as its overflowing parts, which the tokenizer's
        post-processing then processes too (ten times the cost of collating a window)."""
        from tokenizers import Encoding as RustEncoding

        def copy(length: int) -> Any:
            out = RustEncoding.merge([tokens.encoding], growing_offsets=False)
            out.truncate(length)  # what the spans cover; the rest goes to overflowing
            return out

        end = min(len(tokens.encoding.ids), max(2, *(span.stop for span in spans)))
        if end < 2:  # a one-token text: nothing overflows
            parts = [copy(end)]
        else:
            head, first = copy(end), copy(end)
            head.truncate(1)  # positions 1 .. end - 1 become its one-token overflowing parts
            first.truncate(end - 1, direction="left")  # position 0 becomes its only part
            parts = [*first.overflowing, *head.overflowing]
        return [
            Tokens(
                RustEncoding.merge(parts[span.start : span.stop], growing_offsets=False),
                len(span) + self.specials,
            )
            for span in spans
        ]


def _texts(item: Any) -> tuple[Any, ...]:
    """The texts (str or Tokens) of a scheduler input: a text, a (query, document) pair,
    or none (an image)."""
    if isinstance(item, str | Tokens):
        return (item,)
    if isinstance(item, tuple):
        return tuple(t for t in item if isinstance(t, str | Tokens))
    return ()


def input_tokens(tokenizer: Counter) -> Measure:
    """The measuring step of a model whose runners collate Tokens: each text becomes its
    Tokens (a text sent twice, such as a rerank query, tokenised once for both), a pair a
    pair of Tokens; Tokens and images pass as they are. Tokens per input as the model
    reads it, at most its context length: a pair's with the pair's special tokens, 1 for
    an image."""

    def measure(items: list[Any]) -> tuple[list[Any], list[int]]:
        texts = (t for item in items for t in _texts(item) if isinstance(t, str))
        unique = list(dict.fromkeys(texts))
        made = dict(zip(unique, tokenizer.tokens(unique), strict=True))

        def tokenised(item: Any) -> Any:
            if isinstance(item, str):
                return made[item]
            if isinstance(item, tuple):
                return tuple(made[t] if isinstance(t, str) else t for t in item)
            return item

        out = list(map(tokenised, items))
        lengths = []
        for item in out:
            parts = _texts(item)
            count = sum(t.count for t in parts)
            if len(parts) == 2:  # a pair: the pair's special tokens, not each text's
                count += tokenizer.pair_specials - 2 * tokenizer.specials
            lengths.append(min(tokenizer.max_length, count) or 1)
        return out, lengths

    return measure


def input_lengths(counter: Counter) -> Measure:
    """The measuring step of a model whose runners tokenise texts themselves (a
    pre-process no collator reproduces): input_tokens' counts, the inputs as sent."""
    tokenised = input_tokens(counter)

    def measure(items: list[Any]) -> tuple[list[Any], list[int]]:
        return items, tokenised(items)[1]

    return measure


class SlowTokenizer:
    """A model's slow (Python) tokenizer, for models that have no fast one (SigLIP's
    SentencePiece tokenizer): a private copy that makes Tokens (a text's ids without
    special tokens, untruncated) and counts. Slow tokenizers give no character offsets, so
    /v1/tokenize and rerank windows stay unavailable for such models. Call it off the
    event loop."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        import copy

        self._tokenizer = copy.deepcopy(tokenizer)
        self.max_length = max_length
        self.specials = tokenizer.num_special_tokens_to_add(pair=False)
        self.pair_specials = tokenizer.num_special_tokens_to_add(pair=True)

    def tokens(self, texts: list[str]) -> list[Tokens]:
        """Each text as the model's tokenizer reads it, tokenised once."""
        encoded = self._tokenizer(texts, add_special_tokens=False, truncation=False)
        return [Tokens(ids, len(ids) + self.specials) for ids in encoded["input_ids"]]


def tokenize_data(encodings: list[Encoding]) -> list[dict[str, Any]]:
    """The `data` of a /v1/tokenize reply: per input its ids, token strings, character
    offsets ([start, end) into the input; [0, 0] for special tokens), which are special
    tokens, and count."""
    return [
        {
            "object": "tokens",
            "index": index,
            "ids": list(encoding.ids),
            "tokens": list(encoding.tokens),
            "offsets": [list(span) for span in encoding.offsets],
            "special": [bool(flag) for flag in encoding.special_tokens_mask],
            "count": len(encoding.ids),
        }
        for index, encoding in enumerate(encodings)
    ]
