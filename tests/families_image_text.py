"""Tiny image-text families with their processors: SigLIP and SigLIP 2 (CLIP: tests.tiny_models)."""

from __future__ import annotations

from pathlib import Path

from tests.families_shared import _gemma_tokenizer, _save, _sentences
from tests.tiny_models import SMALL
from tests.tiny_tokenizers import sentencepiece, spm_ids


def build_siglip(folder: Path) -> Path:
    """SiglipModel with tiny text (64 positions) and vision (32 px, patch 8) towers and its
    processor: the slow SiglipImageProcessor and a SiglipTokenizer on a trained spiece.model."""
    from transformers import (
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
        SiglipProcessor,
        SiglipTokenizer,
    )

    # SigLIP's ids: <pad> 0, </s> 1 (eos, and the tokenizer's pad), <unk> 2, no <bos>
    model = sentencepiece(
        folder / "spiece.model",
        _sentences(),
        vocab_size=300,
        **spm_ids(pad="<pad>", eos="</s>", unk="<unk>"),
    )
    tokenizer = SiglipTokenizer(str(model), model_max_length=64)
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    config = SiglipConfig(
        text_config={
            **SMALL,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 64,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={**SMALL, "image_size": 32, "patch_size": 8},
    )
    _save(folder, SiglipModel, config)
    return folder


def build_siglip2(folder: Path) -> Path:
    """Siglip2Model (NaFlex: patches of 16 px, up to 256 per image, the processor's
    defaults) with tiny towers and a Gemma SentencePiece tokenizer: like
    google/siglip2-base-patch16-naflex."""
    from transformers import (
        Siglip2Config,
        Siglip2ImageProcessor,
        Siglip2Model,
        Siglip2Processor,
    )

    tokenizer = _gemma_tokenizer(folder, 64)
    image_processor = Siglip2ImageProcessor(patch_size=16, max_num_patches=256)
    Siglip2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    config = Siglip2Config(
        text_config={
            **SMALL,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 64,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**SMALL, "patch_size": 16, "num_patches": 256},
    )
    _save(folder, Siglip2Model, config)
    return folder
