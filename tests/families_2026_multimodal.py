"""Tiny transformers 5 multimodal families: EmbeddingGemma 2 (and its text tower), ModernVBERT."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.families_2026 import _llama3_bpe, _save, st6_save
from tests.families_shared import _gemma_tokenizer
from tests.tiny_models import SMALL

__all__ = [
    "build_embedding_gemma2",
    "build_embedding_gemma2_multimodal",
    "build_modernvbert",
]

# a part of google/embeddinggemma-2's prompt catalog (config_sentence_transformers.json)
EMBEDDING_GEMMA2_PROMPTS = {
    "query": "task: search result | query: ",
    "document": "title: none | text: ",
    "Classification": "task: classification | query: ",
    "Clustering": "task: clustering | query: ",
    "STS": "task: sentence similarity | query: ",
}
# the Gemma 4 media placeholders (image_token, ...) the EmbeddingGemma2 processor reads from
# the tokenizer; the strings other than <|image|> <|audio|> <|video|> are assumed
GEMMA4_MEDIA_TOKENS = {
    "image_token": "<|image|>",
    "boi_token": "<|image>",
    "eoi_token": "<image|>",
    "audio_token": "<|audio|>",
    "boa_token": "<|audio>",
    "eoa_token": "<audio|>",
}
IDEFICS3_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
# renders system text first, then each content item in order, <image> for an image
MODERNVBERT_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% endfor %}"
)


# --- EmbeddingGemma 2 ------------------------------------------------------------------------


def _gemma2_tokenizer(folder: Path) -> Any:
    """The Gemma SentencePiece tokenizer with Gemma 4's media tokens (image_token and the
    others AutoProcessor reads as tokenizer attributes, and <|video|>)."""
    from transformers import GemmaTokenizer

    _gemma_tokenizer(folder, 128).save_pretrained(folder)
    tokenizer = GemmaTokenizer.from_pretrained(folder, extra_special_tokens=GEMMA4_MEDIA_TOKENS)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|video|>"]})
    tokenizer.init_kwargs.pop("vocab_file", None)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _embedding_gemma2_text_config(tokenizer: Any) -> dict[str, Any]:
    return {
        **SMALL,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": 128,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "global_head_dim": 16,  # full_attention layers' own head size and key-value heads
        "num_global_key_value_heads": 1,
        "layer_types": ["sliding_attention", "full_attention"],
        "sliding_window": 8,  # a radius: layer 0 sees 8 tokens either side
        "hidden_size_per_layer_input": 8,
        "embedding_dim": 32,  # the projection inside the model: no Dense module
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }


def build_embedding_gemma2(folder: Path) -> Path:
    """EmbeddingGemma2TextModel (bidirectional Gemma 4 text stack with per-layer inputs and
    the embedding projection inside) with the Gemma SentencePiece tokenizer adding <bos> and
    <eos>, mean pooling and task prompts: the text tower of google/embeddinggemma-2, which
    loads without torchvision (the multimodal repository does not:
    build_embedding_gemma2_multimodal)."""
    from transformers import EmbeddingGemma2TextConfig, EmbeddingGemma2TextModel

    tokenizer = _gemma2_tokenizer(folder)
    config = EmbeddingGemma2TextConfig(**_embedding_gemma2_text_config(tokenizer))
    _save(folder, EmbeddingGemma2TextModel, config)
    st6_save(folder, pooling="mean", max_seq_length=128, prompts=EMBEDDING_GEMMA2_PROMPTS)
    return folder


def build_embedding_gemma2_multimodal(folder: Path) -> Path:
    """EmbeddingGemma2Model (text stack + Gemma 4 vision tower, patches of 4 px, 70 soft
    tokens an image) with its processor configuration (Gemma 4 image processor and audio
    feature extractor, EmbeddingGemma2 video processor) and the text model's
    sentence-transformers files: the layout of google/embeddinggemma-2. Neither
    AutoProcessor nor sentence-transformers loads it without torchvision (the video
    processor has no PIL backend), so it is not in FAMILIES."""
    import shutil

    from transformers import AutoTokenizer, EmbeddingGemma2Config, EmbeddingGemma2Model
    from transformers.models.gemma4.feature_extraction_gemma4 import Gemma4AudioFeatureExtractor
    from transformers.models.gemma4.image_processing_pil_gemma4 import Gemma4ImageProcessorPil

    text = build_embedding_gemma2(folder / "text")
    for path in text.iterdir():  # the tokenizer and sentence-transformers files
        if path.name not in ("config.json", "model.safetensors", "README.md"):
            path.rename(folder / path.name)
    shutil.rmtree(text)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in GEMMA4_MEDIA_TOKENS.items()}
    vision = {
        **SMALL,
        "model_type": "gemma4_vision",
        "num_key_value_heads": 2,
        "head_dim": 16,
        "patch_size": 4,
        "pooling_kernel_size": 3,
        "position_embedding_size": 256,
    }
    config = EmbeddingGemma2Config(
        text_config=_embedding_gemma2_text_config(tokenizer),
        vision_config=vision,
        image_token_id=ids["image_token"],
        boi_token_id=ids["boi_token"],
        eoi_token_id=ids["eoi_token"],
        audio_token_id=ids["audio_token"],
        boa_token_id=ids["boa_token"],
        eoa_token_index=ids["eoa_token"],
        video_token_id=tokenizer.convert_tokens_to_ids("<|video|>"),
    )
    _save(folder, EmbeddingGemma2Model, config)
    images = {"patch_size": 4, "max_soft_tokens": 70, "pooling_kernel_size": 3}
    image_processor = Gemma4ImageProcessorPil(**images).to_dict()
    processor = {
        "processor_class": "EmbeddingGemma2Processor",
        "image_seq_length": 70,
        "image_processor": {**image_processor, "image_processor_type": "Gemma4ImageProcessor"},
        "feature_extractor": Gemma4AudioFeatureExtractor().to_dict(),
        "video_processor": {**images, "video_processor_type": "EmbeddingGemma2VideoProcessor"},
    }
    (folder / "processor_config.json").write_text(json.dumps(processor, indent=2, default=str))
    return folder


# --- ModernVBERT ------------------------------------------------------------------------------


def build_modernvbert(folder: Path) -> Path:
    """ModernVBertModel (a ModernBERT text stack fed SigLIP vision tokens: 32 px images,
    patch 8, pixel shuffle 2, 4 <image> tokens an image) with its Idefics3Processor (the PIL
    image processor, no image splitting, a chat template), a ModernBERT-style byte-level BPE
    with the Idefics3 image tokens, mean pooling over text and image tokens: a
    sentence-transformers bi-encoder like ModernVBERT/bimodernvbert. sentence-transformers
    embeds text, PIL images, and {"image": ..., "text": ...} messages."""
    from transformers import Idefics3Processor, ModernVBertConfig, ModernVBertModel
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    specials = {"unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "mask": "[MASK]"}
    tokenizer = _llama3_bpe(
        folder,
        specials,
        "[CLS]:0 $A:0 [SEP]:0 | [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        extra=IDEFICS3_TOKENS,
        additional_special_tokens=IDEFICS3_TOKENS,
        model_input_names=["input_ids", "attention_mask"],
    )
    side = {"longest_edge": 32}
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=False, size=side, max_image_size=side
    )
    Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=4,  # (32 / 8) ** 2 patches / 2 ** 2
        chat_template=MODERNVBERT_CHAT_TEMPLATE,
    ).save_pretrained(folder)
    text = {
        **SMALL,
        "model_type": "modernbert",
        "vocab_size": len(tokenizer),
        "max_position_embeddings": 128,
        "global_attn_every_n_layers": 2,
        "local_attention": 16,
        "pad_token_id": tokenizer.pad_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "bos_token_id": tokenizer.cls_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }
    vision = {**SMALL, "model_type": "siglip_vision_model", "image_size": 32, "patch_size": 8}
    config = ModernVBertConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        pixel_shuffle_factor=2,
    )
    _save(folder, ModernVBertModel, config)
    st6_save(folder, pooling="mean", max_seq_length=128)
    return folder
