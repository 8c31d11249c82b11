"""Tiny decoder-based families: Qwen3 embedder and reranker, bidirectional Gemma 3 with Dense."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.families_shared import (
    GEMMA_PROMPTS,
    QWEN3_EMBED_PROMPTS,
    _gemma_tokenizer,
    _save,
    _sentences,
    _st_modules,
)
from tests.tiny_models import SMALL
from tests.tiny_tokenizers import byte_bpe, wrap

QWEN3_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _qwen3_tokenizer(
    folder: Path, eos_template: bool, max_length: int, words: tuple[str, ...] = ()
) -> Any:
    """Qwen3-Embedding's tokenizer appends <|endoftext|> to each sequence; the reranker's
    adds nothing (a pair is just concatenated). `words` become whole tokens."""
    from transformers import Qwen2Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    template = "$A:0 <|endoftext|>:0 | $A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1"
    return wrap(
        folder,
        byte_bpe([*_sentences(), *list(words) * 100], QWEN3_SPECIALS),
        Qwen2Tokenizer,
        template if eos_template else None,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=QWEN3_SPECIALS[1:],
        padding_side="left",
        model_max_length=max_length,
    )


def _qwen3_config(tokenizer: Any, **kwargs: Any) -> Any:
    from transformers import Qwen3Config

    sizes = {"num_key_value_heads": 1, "head_dim": 16, **SMALL}  # grouped-query attention
    return Qwen3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=tokenizer.model_max_length,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        **{**sizes, **kwargs},  # kwargs may set the sizes too
    )


def build_qwen3_embedding(folder: Path) -> Path:
    """Qwen3Model (decoder) with a byte-level BPE that appends <|endoftext|>, left padding,
    last-token pooling and an instruction prompt for queries: like Qwen3-Embedding."""
    from transformers import Qwen3Model

    tokenizer = _qwen3_tokenizer(folder, eos_template=True, max_length=128)
    _save(folder, Qwen3Model, _qwen3_config(tokenizer))
    _st_modules(folder, pooling="lasttoken", max_seq_length=128, prompts=QWEN3_EMBED_PROMPTS)
    return folder


def build_gemma3_dense(folder: Path) -> Path:
    """Bidirectional Gemma3TextModel with a SentencePiece BPE tokenizer adding <bos> and
    <eos>, mean pooling, Dense 32->64 and 64->32 (no bias, Identity), Normalize and
    task prompts: like google/embeddinggemma-300m."""
    import torch
    from transformers import Gemma3TextConfig, Gemma3TextModel

    tokenizer = _gemma_tokenizer(
        folder,
        128,
        split_digits=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
    )
    tokenizer.save_pretrained(folder)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        # a bidirectional window is halved by the config: 16 -> 9 saved, 5 once loaded again
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        use_bidirectional_attention=True,  # as EmbeddingGemma's config
        **SMALL,
    )
    _save(folder, Gemma3TextModel, config)
    identity = torch.nn.Identity()
    dense = ((32, 64, False, identity), (64, 32, False, identity))
    _st_modules(folder, pooling="mean", max_seq_length=128, dense=dense, prompts=GEMMA_PROMPTS)
    return folder


def build_qwen3_reranker(folder: Path) -> Path:
    """Qwen3ForSequenceClassification (one label) with the byte-level BPE (pad token set,
    left padding) and 512 positions, room for the card's chat template around a pair: like
    tomaarsen/Qwen3-Reranker-0.6B-seq-cls."""
    from transformers import Qwen3ForSequenceClassification

    tokenizer = _qwen3_tokenizer(folder, eos_template=False, max_length=512)
    config = _qwen3_config(tokenizer, num_labels=1, initializer_range=0.5)
    _save(folder, Qwen3ForSequenceClassification, config)
    return folder
