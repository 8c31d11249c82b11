"""The Rust tokenizers, as Tokens, the collators and the ONNX runner use them, at the pin."""

from __future__ import annotations

from typing import Any

from tests.contract.pins import assert_pinned


def test_the_installed_version_is_the_pin():
    assert_pinned("tokenizers")


def _tokenizer() -> Any:
    """A word-level tokenizer with BERT's special tokens, built in memory."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d"]
    vocab = {word: index for index, word in enumerate(words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return tokenizer


def test_a_copy_encodes_without_specials_and_post_processes_later():
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(_tokenizer().to_str())
    copy.no_truncation()
    copy.no_padding()
    assert copy.post_processor.num_special_tokens_to_add(False) == 2
    assert copy.post_processor.num_special_tokens_to_add(True) == 3
    query, doc = copy.encode_batch(["a b", "c d a"], add_special_tokens=False)
    assert query.ids == [4, 5]
    pair = copy.post_process(query, doc, True)
    assert pair.ids == [2, 4, 5, 3, 6, 7, 4, 3]
    assert pair.type_ids == [0, 0, 0, 0, 1, 1, 1, 1]
    bare = Tokenizer.from_str(copy.to_str())
    bare.post_processor = None  # then only the sequence ids tell a pair's texts apart
    assert [s or 0 for s in bare.post_process(query, doc, True).sequence_ids] == [0, 0, 1, 1, 1]
    copy.enable_truncation(4, direction="left")  # post_process truncates from that side
    assert copy.post_process(doc, None, True).ids == [2, 7, 4, 3]
    assert copy.token_to_id("[PAD]") == 0 and copy.token_to_id("zzz") is None


def test_encodings_merge_and_truncate_into_one_token_parts():
    """What TextTokenizer.windows builds a rerank window from."""
    from tokenizers import Encoding

    text = _tokenizer().encode("a b c d", add_special_tokens=False)
    head = Encoding.merge([text], growing_offsets=False)
    head.truncate(1)
    assert head.ids == [4] and [part.ids for part in head.overflowing] == [[5], [6], [7]]
    first = Encoding.merge([text], growing_offsets=False)
    first.truncate(3, direction="left")
    assert first.ids == [5, 6, 7] and [part.ids for part in first.overflowing] == [[4]]
    window = Encoding.merge(head.overflowing[:2], growing_offsets=False)
    assert window.ids == [5, 6]


def test_a_lowercase_step_goes_in_front_of_the_normaliser():
    from tokenizers.normalizers import NFC, Lowercase, Sequence

    steps = Sequence([NFC(), Lowercase()])
    assert len(list(steps)) == 2  # a Sequence iterates over its steps
    tokenizer = _tokenizer()
    tokenizer.normalizer = Sequence([Lowercase(), *steps])
    assert tokenizer.encode("A B", add_special_tokens=False).ids == [4, 5]
