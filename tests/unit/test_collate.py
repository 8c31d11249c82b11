"""Tokenised once: a batch's features built from Tokens equal the model tokenizer's own call,
for every family (fast tokenizers and SigLIP's slow one), both truncation sides, pairs and
fixed length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from handlers.engine.collate import Collator, SlowCollator
from handlers.engine.text_tokenizer import SlowTokenizer, TextTokenizer, input_tokens
from tests.families import FAMILIES

LONG = " ".join(f"word{i} ünïcode, déjà-vu; 東京 {i}" for i in range(200))  # past every limit
TEXTS = ["  Hello there, General Kenobi!  ", "", "a", "UPPER lower MiXeD", LONG, "tab\tnew\nline"]
QUERY = "what is the capital of france?"
pytestmark = pytest.mark.slow  # builds each family's tiny model (family_models)

FAST = [name for name, f in FAMILIES.items() if f.tokenizer != "SiglipTokenizer"]


def _hf(folder: Path, kind: str) -> Any:
    from transformers import AutoProcessor, AutoTokenizer

    if kind == "image-text":
        return AutoProcessor.from_pretrained(folder).tokenizer
    return AutoTokenizer.from_pretrained(folder)


def _setup(name: str, folder: Path) -> tuple[Any, TextTokenizer, Collator]:
    """(the family's tokenizer, our copy of it, its collator)."""
    family = FAMILIES[name]
    hf = _hf(folder, family.kind)
    assert hf.is_fast
    source = TextTokenizer(hf.backend_tokenizer, family.context_length)
    fixed = name == "siglip2"  # padded to the full length, as its card does
    collator = Collator.of(source, hf, fixed)
    assert collator is not None
    return hf, source, collator


def _expected(hf: Any, args: list, length: int, fixed: bool, side: str) -> dict[str, Any]:
    hf.truncation_side = side
    try:
        return dict(
            hf(
                *args,
                padding="max_length" if fixed else True,
                truncation=True,
                max_length=length,
                return_tensors="np",
            )
        )
    finally:
        hf.truncation_side = "right"


def _assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert sorted(got) == sorted(want)
    for name, values in want.items():
        np.testing.assert_array_equal(got[name], values.astype(np.int64), err_msg=name)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("name", FAST)
def test_texts_from_their_tokens_are_the_tokenizers_own_features(family_models, name, side):
    hf, source, collator = _setup(name, family_models[name])
    want = _expected(hf, [TEXTS], source.max_length, collator.fixed_length, side)
    items, lengths = input_tokens(source)(TEXTS)
    features, counts = collator(items, side)
    _assert_same(features, want)
    assert counts == want["attention_mask"].sum(axis=1).tolist()
    assert lengths == [max(count, 1) for count in counts]  # the scheduler's: at least 1
    # a text whose count failed reaches the collator as a string: the same features
    _assert_same(collator(TEXTS, side)[0], want)


@pytest.mark.parametrize("name", [n for n in FAST if FAMILIES[n].kind != "image-text"])
def test_pairs_from_their_tokens_are_the_tokenizers_own_features(family_models, name):
    hf, source, collator = _setup(name, family_models[name])
    docs = ["Paris is the capital.", "", LONG, LONG[:300]]
    queries = [QUERY, QUERY, QUERY, LONG]  # longest first: the longer text is cut first
    pairs = list(zip(queries, docs, strict=True))
    want = _expected(hf, [queries, docs], source.max_length, False, "right")
    items, lengths = input_tokens(source)(pairs)
    assert items[0][0] is items[1][0]  # the repeated query is tokenised once
    features, counts = collator(items)
    _assert_same(features, want)
    fitting = want["attention_mask"].sum(axis=1).tolist()
    assert counts == fitting
    assert lengths[:2] == fitting[:2]  # untruncated pairs: the pair's count exactly
    assert lengths[2:] == [source.max_length] * 2  # longer ones: at most the context


@pytest.mark.parametrize("name", ["bert-mean", "xlm-r", "qwen3-embedding", "gemma3-dense"])
def test_windows_are_their_texts_token_slices_and_carry_nothing_else(family_models, name):
    hf, source, collator = _setup(name, family_models[name])
    tokens = source.tokens([LONG])[0]
    full = hf(LONG, add_special_tokens=False)["input_ids"]
    assert tokens.count == len(full) + source.specials
    spans = [range(0, 1), range(0, 50), range(37, 87), range(len(full) - 9, len(full))]
    windows = source.windows(tokens, spans)
    for window, span in zip(windows, spans, strict=True):
        assert window.encoding.ids == full[span.start : span.stop]
        assert window.count == len(span) + source.specials
        assert window.encoding.overflowing == []  # the rest of the text is not carried
    assert len(tokens.encoding.ids) == len(full)  # the text's own Tokens are unchanged
    (one,) = source.windows(source.tokens(["a"])[0], [range(0, 1)])  # a one-token text
    assert one.encoding.ids == hf("a", add_special_tokens=False)["input_ids"][:1]


@pytest.mark.parametrize("name", ["bert-mean", "xlm-r-reranker"])  # classes with a pair template
def test_a_query_and_window_pair_is_the_tokenizers_pair_of_those_ids(family_models, name):
    hf, source, collator = _setup(name, family_models[name])
    full = hf(LONG, add_special_tokens=False, return_offsets_mapping=True)
    q_ids = hf(QUERY, add_special_tokens=False)["input_ids"]
    # a window of whole words, so its text alone tokenises to the same ids: the oracle is
    # the tokenizer's own pair call on (query, that text)
    words = full.word_ids()
    start = next(i for i in range(37, 60) if words[i] != words[i - 1])
    stop = next(i for i in range(87, 110) if words[i] != words[i - 1])
    span = range(start, stop)
    text = LONG[full["offset_mapping"][start][0] : full["offset_mapping"][stop - 1][1]]
    assert hf(text, add_special_tokens=False)["input_ids"] == full["input_ids"][start:stop]
    (window,) = source.windows(source.tokens([LONG])[0], [span])
    features, counts = collator([(source.tokens([QUERY])[0], window)])
    want = hf(QUERY, text)
    for feature, values in features.items():
        assert values[0].tolist() == want[feature], feature
    assert counts == [len(q_ids) + len(span) + source.pair_specials]


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_slow_tokenizers_texts_from_their_tokens_are_its_own_features(family_models, side):
    """SigLIP's SentencePiece tokenizer has no fast version: ids, then its own
    prepare_for_model and pad, as its batch call does (padded to the full length)."""
    hf = _hf(family_models["siglip"], "image-text")
    assert not hf.is_fast
    length = FAMILIES["siglip"].context_length
    source = SlowTokenizer(hf, length)
    collator = SlowCollator(hf, source, fixed_length=True)
    want = _expected(hf, [TEXTS], length, True, side)
    items, lengths = input_tokens(source)(TEXTS)
    features, counts = collator(items, side)
    _assert_same(features, {k: v for k, v in want.items() if k in hf.model_input_names})
    assert counts == want["attention_mask"].sum(axis=1).tolist()
    assert lengths == [max(count, 1) for count in counts]
    assert source.tokens(TEXTS[:1])[0].count == len(hf(TEXTS[0])["input_ids"])  # untruncated
    _assert_same(collator(TEXTS, side)[0], {k: want[k] for k in features})


def test_the_load_time_probe_holds_a_collator_to_the_models_own_tokenize(family_models):
    """A sentence-transformers model collates only when its own preprocess() builds the same
    features on the probe; a collator with another context length (or case) does not."""
    from sentence_transformers import SentenceTransformer

    from handlers.engine.collate import reproduces

    model = SentenceTransformer(str(family_models["bert-mean"]), device="cpu")
    hf = model.tokenizer
    length = model.max_seq_length
    right = Collator.of(TextTokenizer(hf.backend_tokenizer, length), hf)
    shorter = Collator.of(TextTokenizer(hf.backend_tokenizer, length - 1), hf)
    assert reproduces(right, model)
    assert not reproduces(shorter, model)
    assert reproduces(None, model)  # nothing to hold
    assert hf.truncation_side == "right"  # left as it was


def test_a_tokenizer_without_a_declared_limit_is_not_truncated(family_models):
    """transformers' placeholder for "no model_max_length" (1e30) means no truncation, as
    the tokenizer's own call does; it is no context length to truncate at."""
    hf = _hf(family_models["bert-mean"], "embed")
    hf.model_max_length = int(1e30)
    source = TextTokenizer(hf.backend_tokenizer, hf.model_max_length)
    collator = Collator.of(source, hf)
    want = dict(hf([LONG, "short"], padding=True, truncation=True, return_tensors="np"))
    assert want["input_ids"].shape[1] > 1000  # the tokenizer's own call did not truncate
    items, _ = input_tokens(source)([LONG, "short"])
    _assert_same(collator(items)[0], want)


def test_pairs_of_a_tokenizer_without_a_post_processor_keep_their_type_ids():
    """With no post-processor nothing rewrites type ids: the tokenizer's own pair call
    gives the second text type 1, and so does the collator."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", *"a b c d e f".split()])}
    rust = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    rust.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(rust.to_str()),
        pad_token="[PAD]",
        model_max_length=4,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    assert rust.post_processor is None  # (transformers 5 gives its copy a plain template)
    source = TextTokenizer(rust, 4)
    collator = Collator.of(source, hf)
    queries, docs = ["a b", "a", "a b c"], ["c d", "e f x", "d e f"]
    want = dict(hf(queries, docs, padding=True, truncation="longest_first", return_tensors="np"))
    items, _ = input_tokens(source)(list(zip(queries, docs, strict=True)))
    features, _ = collator(items)
    _assert_same(features, want)
    assert want["token_type_ids"][0].tolist() == [0, 0, 1, 1]
