"""Tiny random-weight models of the families only transformers 5 defines, saved as their hub
repositories are: text embedders in the sentence-transformers 6 format (modules.json naming
`sentence_transformers.base.modules.*`), multimodal ones with their processors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.tiny_models import SMALL, _bert_tokenizer, _seed, _vocab
from tests.tiny_tokenizers import byte_bpe, wrap

__all__ = [
    "build_embedding_gemma2",
    "build_embedding_gemma2_multimodal",
    "build_eurobert",
    "build_gte",
    "build_jina_embeddings_v3",
    "build_modernvbert",
    "build_nomic_bert",
    "build_ultrabert",
]

# jina-embeddings-v3's config_sentence_transformers.json: one prompt per task (LoRA adapter)
JINA_V3_PROMPTS = {
    "retrieval.query": "Represent the query for retrieving evidence documents: ",
    "retrieval.passage": "Represent the document for retrieval: ",
    "separation": "",
    "classification": "",
    "text-matching": "",
}
# the -hf repository's PEFT LoRA adapters, one subfolder per task
JINA_V3_ADAPTERS = (
    "retrieval_query",
    "retrieval_passage",
    "separation",
    "classification",
    "text_matching",
)
ULTRABERT_PROMPTS = {
    "query": "Instruct: Given a web search query, retrieve relevant passages that answer the query"
    "\nQuery: ",
    "document": "",
}
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
ST6_EMPTY_PROMPTS = {"query": "", "document": ""}  # what sentence-transformers 6 saves by default
IDEFICS3_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"]
# renders system text first, then each content item in order, <image> for an image
MODERNVBERT_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% endfor %}"
)


def st6_save(
    folder: Path,
    *,
    pooling: str,
    max_seq_length: int,
    prompts: dict[str, str] | None = None,
    **transformer: Any,
) -> None:
    """Load the transformers folder as sentence-transformers 6 does and save it in its format:
    Transformer, Pooling (`pooling`), Normalize; `prompts` in config_sentence_transformers.json
    (sentence-transformers adds empty "query" and "document" prompts where missing)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    module = Transformer(str(folder), max_seq_length=max_seq_length, **transformer)
    modules = [module, Pooling(module.get_embedding_dimension(), pooling), Normalize()]
    model = SentenceTransformer(
        modules=modules, prompts=prompts or {}, similarity_fn_name="cosine", device="cpu"
    )
    model.save(str(folder))


def _save(folder: Path, model_cls: type, config: Any) -> Any:
    _seed()
    model = model_cls(config)
    model.save_pretrained(folder)
    return model


# --- text embedders ------------------------------------------------------------------------


def build_gte(folder: Path) -> Path:
    """GteModel (RoPE, gated MLP, post-norm BERT) with the XLM-R Unigram tokenizer, CLS
    pooling, no prompts: like Alibaba-NLP/gte-multilingual-base."""
    from transformers import GteConfig, GteModel

    from tests.families import _xlmr_tokenizer

    tokenizer = _xlmr_tokenizer(folder)
    config = GteConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        **SMALL,
    )
    _save(folder, GteModel, config)
    st6_save(folder, pooling="cls", max_seq_length=128)
    return folder


def build_nomic_bert(folder: Path) -> Path:
    """NomicBertModel (RoPE, SwiGLU) with a BERT WordPiece tokenizer, mean pooling and the
    search_query / search_document prompts: like nomic-ai/nomic-embed-text-v1.5."""
    from transformers import BertTokenizer, NomicBertConfig, NomicBertModel

    from tests.families import NOMIC_PROMPTS

    _bert_tokenizer(folder, BertTokenizer)
    config = NomicBertConfig(
        vocab_size=len(_vocab()), max_position_embeddings=128, type_vocab_size=2, **SMALL
    )
    _save(folder, NomicBertModel, config)
    st6_save(folder, pooling="mean", max_seq_length=128, prompts=NOMIC_PROMPTS)
    return folder


def _llama3_bpe(
    folder: Path, specials: dict[str, str], template: str, extra: tuple = (), **kw: Any
) -> Any:
    """A byte-level BPE with `specials` (role -> token) and `extra` special tokens (the first
    ids), loaded by AutoTokenizer as TokenizersBackend (hub: PreTrainedTokenizerFast), with a
    `template` post-processor."""
    from transformers import TokenizersBackend

    from tests.families import _sentences

    folder.mkdir(parents=True, exist_ok=True)
    backend = byte_bpe(_sentences(), list(dict.fromkeys([*specials.values(), *extra])))
    tokens = {f"{role}_token": token for role, token in specials.items()}
    return wrap(folder, backend, TokenizersBackend, template, model_max_length=128, **tokens, **kw)


def build_eurobert(folder: Path) -> Path:
    """EuroBertModel (Llama-style bidirectional encoder) with a Llama-3 style byte-level BPE
    adding <|begin_of_text|> and <|end_of_text|> (also the pad token), mean pooling: a
    sentence-transformers embedder on EuroBERT/EuroBERT-210m."""
    from transformers import EuroBertConfig, EuroBertModel

    bos, eos, mask = "<|begin_of_text|>", "<|end_of_text|>", "<|mask|>"
    tokenizer = _llama3_bpe(
        folder,
        {"bos": bos, "eos": eos, "pad": eos, "mask": mask},
        f"{bos}:0 $A:0 {eos}:0 | {bos}:0 $A:0 {eos}:0 $B:1 {eos}:1",
        model_input_names=["input_ids", "attention_mask"],
    )
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in (("bos", bos), ("eos", eos))}
    config = EuroBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        num_key_value_heads=1,
        pad_token_id=ids["eos"],
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        mask_token_id=tokenizer.convert_tokens_to_ids(mask),
        **SMALL,
    )
    _save(folder, EuroBertModel, config)
    st6_save(folder, pooling="mean", max_seq_length=128)
    return folder


def build_ultrabert(folder: Path) -> Path:
    """UltrabertModel (bidirectional, sliding-window and full attention layers, per-layer-type
    RoPE) with a byte-level BPE and a `[CLS] $A [SEP]` template, mean pooling and an
    instruction prompt for queries: like dmis-lab/UltraBERT-Embed-150M (whose tokenizer and
    prompts are assumed here, not copied)."""
    from transformers import UltrabertConfig, UltrabertModel

    specials = {"pad": "[PAD]", "cls": "[CLS]", "sep": "[SEP]", "unk": "[UNK]", "mask": "[MASK]"}
    tokenizer = _llama3_bpe(
        folder,
        specials,
        "[CLS]:0 $A:0 [SEP]:0 | [CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        model_input_names=["input_ids", "attention_mask"],
    )
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    config = UltrabertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        num_key_value_heads=1,
        layer_types=["sliding_attention", "full_attention"],
        sliding_window=8,  # a radius: each token sees 8 either side on layer 0
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=cls,
        eos_token_id=sep,
        **SMALL,
    )
    _save(folder, UltrabertModel, config)
    st6_save(folder, pooling="mean", max_seq_length=128, prompts=ULTRABERT_PROMPTS)
    return folder


def build_jina_embeddings_v3(folder: Path) -> Path:
    """JinaEmbeddingsV3Model (XLM-R with RoPE) with the XLM-R Unigram tokenizer, mean
    pooling, the five task prompts, and one PEFT LoRA adapter per task in a subfolder (applied
    as the card does: `load_adapter(folder, adapter_name=task, adapter_kwargs={"subfolder":
    task})`, then `set_adapter(task)`): like jinaai/jina-embeddings-v3-hf."""
    from transformers import JinaEmbeddingsV3Config, JinaEmbeddingsV3Model

    from tests.families import _xlmr_tokenizer

    tokenizer = _xlmr_tokenizer(folder)
    config = JinaEmbeddingsV3Config(
        vocab_size=len(tokenizer),
        max_position_embeddings=128 + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **SMALL,
    )
    model = _save(folder, JinaEmbeddingsV3Model, config)
    for i, task in enumerate(JINA_V3_ADAPTERS):
        _lora_adapter(folder / task, model, ["q_proj", "k_proj", "v_proj", "o_proj"], seed=i)
    st6_save(folder, pooling="mean", max_seq_length=128, prompts=JINA_V3_PROMPTS)
    return folder


def _lora_adapter(folder: Path, model: Any, targets: list[str], seed: int, rank: int = 4) -> None:
    """A LoRA adapter on the `targets` linear layers of `model`, saved by peft itself
    (adapter_config.json + adapter_model.safetensors), with random non-zero A and B."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=8 * rank,  # scaled up: each adapter moves every vector well past 0.9999
        target_modules=targets,
        task_type="FEATURE_EXTRACTION",
        init_lora_weights=False,  # B random too: the adapter changes every vector
    )
    get_peft_model(copy.deepcopy(model), config).save_pretrained(folder)


# --- EmbeddingGemma 2 ------------------------------------------------------------------------


def _gemma2_tokenizer(folder: Path) -> Any:
    """The Gemma SentencePiece tokenizer with Gemma 4's media tokens (image_token and the
    others AutoProcessor reads as tokenizer attributes, and <|video|>)."""
    from transformers import GemmaTokenizer

    from tests.families import _gemma_tokenizer

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
