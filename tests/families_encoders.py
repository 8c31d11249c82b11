"""Tiny encoder families: BERT (CLS, max, Dense), XLM-R (embedder, reranker), ModernBERT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.families_shared import NOMIC_PROMPTS, _save, _sentences, _st_modules, _xlmr_tokenizer
from tests.tiny_models import SMALL, _bert_tokenizer, _vocab
from tests.tiny_tokenizers import byte_bpe, wrap


def _bert(folder: Path, pooling: str, max_seq_length: int, dense: tuple = ()) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizer

    _bert_tokenizer(folder, BertTokenizer)
    config = BertConfig(vocab_size=len(_vocab()), max_position_embeddings=128, **SMALL)
    _save(folder, BertModel, config)
    _st_modules(folder, pooling=pooling, max_seq_length=max_seq_length, dense=dense)
    return folder


def build_bert_cls(folder: Path) -> Path:
    """BERT (WordPiece) with CLS pooling, like BAAI/bge-small-en-v1.5."""
    return _bert(folder, "cls", 128)


def build_bert_max(folder: Path) -> Path:
    """BERT with max pooling; max_seq_length 64 below the tokenizer's 128 (as all-MiniLM's
    256 is below its 512), so the context length is sentence-transformers', not the
    tokenizer's."""
    return _bert(folder, "max", 64)


def build_labse_dense(folder: Path) -> Path:
    """BERT, CLS pooling, Dense 32->32 with Tanh and bias, Normalize: like LaBSE."""
    import torch

    return _bert(folder, "cls", 128, dense=((32, 32, True, torch.nn.Tanh()),))


def build_modernbert(folder: Path) -> Path:
    """ModernBertModel (alternating global / local attention) with a byte-level BPE and a
    `[CLS] $A [SEP]` template, mean pooling: like nomic-ai/modernbert-embed-base."""
    modernbert_backbone(folder)
    _st_modules(folder, pooling="mean", max_seq_length=128, prompts=NOMIC_PROMPTS)
    return folder


def modernbert_backbone(folder: Path) -> Path:
    """The ModernBertModel and its tokenizer of build_modernbert, saved by transformers."""
    from transformers import ModernBertConfig, ModernBertModel, TokenizersBackend

    folder.mkdir(parents=True, exist_ok=True)
    specials = {"unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]"}
    tokenizer = wrap(
        folder,
        byte_bpe(_sentences(), list(specials.values())),
        TokenizersBackend,
        "[CLS]:0 $A:0 [SEP]:0 | [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        **{f"{k}_token": t for k, t in specials.items()},
        model_input_names=["input_ids", "attention_mask"],  # no token_type_ids
        model_max_length=128,
    )
    cls, sep, pad = (tokenizer.convert_tokens_to_ids(specials[k]) for k in ("cls", "sep", "pad"))
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        global_attn_every_n_layers=2,  # layer 0 global, layer 1 local (a 16-token window)
        local_attention=16,
        pad_token_id=pad,
        cls_token_id=cls,
        sep_token_id=sep,
        bos_token_id=cls,
        eos_token_id=sep,
        **SMALL,
    )
    _save(folder, ModernBertModel, config)
    return folder


def _xlmr_config(tokenizer: Any, **kwargs: Any) -> Any:
    from transformers import XLMRobertaConfig

    # positions start at padding_idx + 1: two more than the longest input
    return XLMRobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128 + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **SMALL,
        **kwargs,
    )


def build_xlmr(folder: Path) -> Path:
    """XLMRobertaModel with a Unigram (SentencePiece-style) tokenizer, CLS pooling: like
    BAAI/bge-m3's dense embeddings."""
    from transformers import XLMRobertaModel

    _save(folder, XLMRobertaModel, _xlmr_config(_xlmr_tokenizer(folder)))
    _st_modules(folder, pooling="cls", max_seq_length=128)
    return folder


def build_xlmr_reranker(folder: Path) -> Path:
    """XLMRobertaForSequenceClassification (one label) with the Unigram tokenizer: like
    BAAI/bge-reranker-v2-m3."""
    from transformers import XLMRobertaForSequenceClassification

    config = _xlmr_config(_xlmr_tokenizer(folder), num_labels=1, initializer_range=0.5)
    _save(folder, XLMRobertaForSequenceClassification, config)
    return folder
