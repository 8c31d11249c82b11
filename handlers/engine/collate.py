"""A batch's model inputs built from Tokens, as the model's tokenizer call builds them, and
the load-time probe that holds a collator to a model's own preprocess()."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from handlers.engine.text_tokenizer import SlowTokenizer, TextTokenizer, Tokens

__all__ = ["FEATURES", "PROBE", "Collator", "SlowCollator", "reproduces"]

log = logging.getLogger(__name__)

FEATURES = ("input_ids", "token_type_ids", "attention_mask")  # in a tokenizer's output order
UNBOUNDED = 2**31  # a context length past this is transformers' "none declared": no truncation


def _tokens(source: TextTokenizer | SlowTokenizer, item: Tokens | str) -> Tokens:
    """An item's Tokens; a text whose count failed is tokenised here."""
    return item if isinstance(item, Tokens) else source.tokens([item])[0]


class Collator:
    """Builds the features of a batch of texts or (query, document) pairs from their Tokens,
    the way a fast tokenizer's `tokenizer(texts, padding=..., truncation=True, max_length=...)`
    does: truncation at the context length from the batch's side (a pair's longest text
    first), the model's special tokens, padding to the longest input (or, `fixed_length`,
    to the context length) on the tokenizer's side, and the features the tokenizer lists.
    A text not tokenised yet (its count failed) is tokenised here. The Rust pipeline does
    the truncation and special tokens (`post_process`), so they are the tokenizer's own.
    Owned by one prepare thread, which sets the truncation side per batch.
    """

    def __init__(
        self,
        source: TextTokenizer,
        pad_id: int,
        pad_type_id: int = 0,
        padding_side: str = "right",
        names: tuple[str, ...] = ("input_ids", "attention_mask"),
        fixed_length: bool = False,
    ) -> None:
        self.source = source
        self._tokenizer = source.copy()
        self.pad_id = pad_id
        self.pad_type_id = pad_type_id
        self.left = padding_side == "left"
        self.names = tuple(n for n in FEATURES if n in names)
        self.fixed_length = fixed_length
        # Without a post-processor nothing sets a pair's type ids: the tokenizer's own pair
        # encoding gives the second text type 1 (its sequence id)
        self._pair_types = self._tokenizer.post_processor is None

    @classmethod
    def of(cls, source: TextTokenizer, hf_tokenizer: Any, fixed_length: bool = False) -> Any:
        """The collator of a transformers fast tokenizer (its pad token, padding side and
        model_input_names); None when it has no pad token (its own call refuses to pad)."""
        if hf_tokenizer.pad_token_id is None:
            return None
        return cls(
            source,
            hf_tokenizer.pad_token_id,
            hf_tokenizer.pad_token_type_id,
            hf_tokenizer.padding_side,
            tuple(hf_tokenizer.model_input_names),
            fixed_length,
        )

    def _encode(self, item: Any) -> Any:
        if isinstance(item, tuple):
            query, doc = (_tokens(self.source, t) for t in item)
            return self._tokenizer.post_process(query.encoding, doc.encoding, True)
        return self._tokenizer.post_process(_tokens(self.source, item).encoding, None, True)

    def __call__(
        self, items: list[Any], direction: str = "right"
    ) -> tuple[dict[str, Any], list[int]]:
        """(features as int64 arrays, tokens per input) of `items`: texts (str or Tokens)
        or (query, document) pairs of them."""
        limit = self.source.max_length
        if limit < UNBOUNDED:
            self._tokenizer.enable_truncation(limit, direction=direction)
        encodings = [self._encode(item) for item in items]
        lengths = [len(e.ids) for e in encodings]
        width = limit if self.fixed_length else max(lengths)
        shape = (len(items), width)
        arrays = {
            "input_ids": np.full(shape, self.pad_id, dtype=np.int64),
            "token_type_ids": np.full(shape, self.pad_type_id, dtype=np.int64),
            "attention_mask": np.zeros(shape, dtype=np.int64),
        }
        for row, (encoding, length) in enumerate(zip(encodings, lengths, strict=True)):
            cols = slice(width - length, width) if self.left else slice(0, length)
            arrays["input_ids"][row, cols] = encoding.ids
            pair = self._pair_types and isinstance(items[row], tuple)
            types = [s or 0 for s in encoding.sequence_ids] if pair else encoding.type_ids
            arrays["token_type_ids"][row, cols] = types
            arrays["attention_mask"][row, cols] = 1
        return {name: arrays[name] for name in self.names}, lengths


class SlowCollator:
    """The collator of a slow tokenizer (SigLIP's): builds a batch of texts from their
    Tokens (ids) as the tokenizer's own batch call does, each through its
    `prepare_for_model` (truncation at the context length from the batch's side, special
    tokens), then its `pad` (to the longest input or, `fixed_length`, to the context
    length). `tokenizer` is the model's own, used by its prepare thread only."""

    def __init__(self, tokenizer: Any, source: SlowTokenizer, fixed_length: bool = False):
        self.tokenizer = tokenizer
        self.source = source
        self.fixed_length = fixed_length
        self.names = tuple(n for n in FEATURES if n in tokenizer.model_input_names)

    def __call__(
        self, items: list[Any], direction: str = "right"
    ) -> tuple[dict[str, Any], list[int]]:
        """(features as int64 arrays, tokens per input) of texts (str or Tokens)."""
        tokenizer, limit = self.tokenizer, self.source.max_length
        tokenizer.truncation_side = direction
        rows = [
            tokenizer.prepare_for_model(
                _tokens(self.source, item).encoding,
                add_special_tokens=True,
                truncation=True,
                max_length=limit,
                return_attention_mask=False,
            )
            for item in items
        ]
        padded = tokenizer.pad(
            {name: [row[name] for row in rows] for name in rows[0]},
            padding="max_length" if self.fixed_length else True,
            max_length=limit,
            return_attention_mask=True,
            return_tensors="np",
        )
        features = {name: padded[name].astype(np.int64) for name in self.names if name in padded}
        return features, [len(row["input_ids"]) for row in rows]


# Case, surrounding whitespace, and a text past any encoder's context length.
PROBE = ["  Tokenised ONCE, or Twice?  ", "probe " * 9000]


def reproduces(collator: Collator | None, model: Any) -> bool:
    """Whether a sentence-transformers model's own preprocess() builds, on PROBE and from
    both truncation sides, the features the collator builds (True without a collator:
    nothing to check; False when the collator fails on it). Checked once at load: it holds
    the settings the collator derives (context length, lower-casing) against the model's
    real pre-process."""
    if collator is None:
        return True
    side = model.tokenizer.truncation_side
    try:
        return _same_on_probe(collator, model)
    except Exception:  # the collator cannot build this model's features
        log.debug("the collator failed on the probe", exc_info=True)
        return False
    finally:
        model.tokenizer.truncation_side = side


def _same_on_probe(collator: Collator, model: Any) -> bool:
    for direction in ("right", "left"):
        model.tokenizer.truncation_side = direction
        made = model.preprocess(PROBE)  # also names its modality (a string): not a feature
        want = {name: value.numpy() for name, value in made.items() if hasattr(value, "numpy")}
        got, _ = collator(PROBE, direction)
        if sorted(got) != sorted(want):
            return False
        if not all(np.array_equal(got[name], want[name]) for name in want):
            return False
    return True
