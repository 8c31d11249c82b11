"""Tokenizers of the real formats (byte-level BPE, Unigram, SentencePiece), trained at test
time on a small corpus, and wrapped as the transformers classes the families use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["byte_bpe", "sentencepiece", "spm_ids", "unigram", "wrap"]


def wrap(folder: Path, backend: Any, cls: type, template: str | None, **kw: Any) -> Any:
    """Wrap a trained `tokenizers` backend as the transformers class `cls`, with a
    TemplateProcessing post-processor from `template` ("single | pair"; None: add
    nothing, a pair is concatenated), save it into `folder` and return it."""
    from tokenizers.processors import ByteLevel, TemplateProcessing

    if template is None:
        backend.post_processor = ByteLevel(trim_offsets=False)
    else:
        single, pair = template.split(" | ")
        names = dict.fromkeys(t.split(":")[0] for t in pair.split() if not t.startswith("$"))
        specials = [(t, backend.token_to_id(t)) for t in names]
        backend.post_processor = TemplateProcessing(
            single=single, pair=pair, special_tokens=specials
        )
    cls(tokenizer_object=backend, **kw).save_pretrained(folder)
    # transformers 5: a class with its own pipeline (Qwen2Tokenizer, XLMRobertaTokenizer)
    # loads only the vocabulary and post-processor from tokenizer.json and sets its own
    # normalizer and pre-tokenizer; save what it loads, so tokenizer.json agrees with
    # AutoTokenizer as on the hub
    tokenizer = cls.from_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


def byte_bpe(corpus: list[str], specials: list[str], vocab_size: int = 400) -> Any:
    """A byte-level BPE (GPT-2 / Qwen / ModernBERT style) trained on `corpus`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return tok


def unigram(corpus: list[str], specials: list[str], unk: str, vocab_size: int = 300) -> Any:
    """A Metaspace Unigram (XLM-R / SentencePiece-converted style) trained on `corpus`, with
    `specials` first. Trained by SentencePiece: the `tokenizers` UnigramTrainer gives another
    vocabulary on each run."""
    import tempfile

    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    ids = {f"{kind}_id": -1 for kind in ("bos", "eos", "pad", "unk")}
    with tempfile.TemporaryDirectory() as tmp:
        path = sentencepiece(
            Path(tmp) / "unigram.model",
            corpus,
            vocab_size,
            model_type="unigram",
            normalization_rule_name="identity",
            **ids | {"unk_id": 0, "unk_piece": unk},
        )
        processor = spm.SentencePieceProcessor(model_file=str(path))
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        scores = [processor.get_score(i) for i in range(processor.get_piece_size())]
    vocab = [(t, 0.0) for t in specials] + [
        (piece, score) for piece, score in zip(pieces, scores, strict=True) if piece not in specials
    ]
    tok = Tokenizer(models.Unigram(vocab, unk_id=specials.index(unk), byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.add_special_tokens(specials)
    return tok


def sentencepiece(path: Path, corpus: list[str], vocab_size: int, **kwargs: Any) -> Path:
    """Train a tiny SentencePiece model on `corpus` and write it to `path`."""
    import sentencepiece as spm

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(corpus),
            model_writer=out,
            vocab_size=vocab_size,
            character_coverage=1.0,
            minloglevel=2,
            hard_vocab_limit=False,
            **kwargs,
        )
    return path


def spm_ids(**pieces: str) -> dict[str, Any]:
    """SentencePiece trainer options giving each named special piece (pad, eos, bos, unk)
    the next id, in the order given; no bos unless named."""
    options: dict[str, Any] = {"bos_id": -1}
    for i, (kind, piece) in enumerate(pieces.items()):
        options |= {f"{kind}_id": i, f"{kind}_piece": piece}
    return options
