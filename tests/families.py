"""The registry of tiny model families: how each is built, what serving it must report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests import families_2026, families_2026_multimodal, tiny_models
from tests.families_decoders import build_gemma3_dense, build_qwen3_embedding, build_qwen3_reranker
from tests.families_encoders import (
    build_bert_cls,
    build_bert_max,
    build_labse_dense,
    build_modernbert,
    build_xlmr,
    build_xlmr_reranker,
)
from tests.families_image_text import build_siglip, build_siglip2
from tests.families_shared import BERT_PROMPTS, GEMMA_PROMPTS, NOMIC_PROMPTS, QWEN3_EMBED_PROMPTS
from tests.tiny_models import build_bert_embedder


@dataclass(frozen=True)
class Family:
    """How a family is built and what a service serving it must report."""

    build: Callable[[Path], Path]
    kind: str  # "embed", "rerank" or "image-text"
    example: str  # a real Hub model of the family
    context_length: int  # what max_input_tokens must say: where inputs are truncated
    tokenizer: str  # the class AutoTokenizer loads (transformers 5: no "...Fast" classes)
    pooling: str | None = None  # sentence-transformers pooling mode (embedders)
    dim: int | None = None  # embedding dimension (None: a reranker)
    dense: int = 0  # sentence-transformers Dense modules after pooling
    prompts: dict[str, str] = field(default_factory=dict)  # config_sentence_transformers.json
    adapters: tuple[str, ...] = ()  # LoRA task adapters in subfolders (peft)


FAMILIES: dict[str, Family] = {
    "bert-mean": Family(
        build_bert_embedder,
        "embed",
        "sentence-transformers/all-MiniLM-L6-v2",
        128,
        "BertTokenizer",
        "mean",
        32,
        prompts=BERT_PROMPTS,
    ),
    "bert-cls": Family(
        build_bert_cls, "embed", "BAAI/bge-small-en-v1.5", 128, "BertTokenizer", "cls", 32
    ),
    "bert-max": Family(
        build_bert_max,
        "embed",
        "sentence-transformers/bert-base-nli-max-tokens",
        64,
        "BertTokenizer",
        "max",
        32,
    ),
    "qwen3-embedding": Family(
        build_qwen3_embedding,
        "embed",
        "Qwen/Qwen3-Embedding-0.6B",
        128,
        "Qwen2Tokenizer",
        "lasttoken",
        32,
        prompts=QWEN3_EMBED_PROMPTS,
    ),
    "modernbert": Family(
        build_modernbert,
        "embed",
        "nomic-ai/modernbert-embed-base",
        128,
        "TokenizersBackend",
        "mean",
        32,
        prompts=NOMIC_PROMPTS,
    ),
    "xlm-r": Family(build_xlmr, "embed", "BAAI/bge-m3", 128, "XLMRobertaTokenizer", "cls", 32),
    "gemma3-dense": Family(
        build_gemma3_dense,
        "embed",
        "google/embeddinggemma-300m",
        128,
        "GemmaTokenizer",
        "mean",
        32,
        dense=2,
        prompts=GEMMA_PROMPTS,
    ),
    "labse-dense": Family(
        build_labse_dense,
        "embed",
        "sentence-transformers/LaBSE",
        128,
        "BertTokenizer",
        "cls",
        32,
        dense=1,
    ),
    "clip": Family(
        tiny_models.build_clip,
        "image-text",
        "patrickjohncyh/fashion-clip",
        77,
        "CLIPTokenizer",
        dim=16,
    ),
    "siglip": Family(
        build_siglip, "image-text", "google/siglip-base-patch16-224", 64, "SiglipTokenizer", dim=32
    ),
    "siglip2": Family(
        build_siglip2,
        "image-text",
        "google/siglip2-base-patch16-naflex",
        64,
        "Siglip2Tokenizer",
        dim=32,
    ),
    "xlm-r-reranker": Family(
        build_xlmr_reranker, "rerank", "BAAI/bge-reranker-v2-m3", 128, "XLMRobertaTokenizer"
    ),
    "qwen3-reranker": Family(
        build_qwen3_reranker,
        "rerank",
        "tomaarsen/Qwen3-Reranker-0.6B-seq-cls",
        512,
        "Qwen2Tokenizer",
    ),
    # transformers 5 model types, saved by sentence-transformers 6 (tests.families_2026*)
    "embedding_gemma2": Family(
        families_2026_multimodal.build_embedding_gemma2,
        "embed",
        "google/embeddinggemma-2",
        128,
        "GemmaTokenizer",
        "mean",
        32,
        prompts=families_2026_multimodal.EMBEDDING_GEMMA2_PROMPTS,
    ),
    "jina_embeddings_v3": Family(
        families_2026.build_jina_embeddings_v3,
        "embed",
        "jinaai/jina-embeddings-v3-hf",
        128,
        "XLMRobertaTokenizer",
        "mean",
        32,
        prompts={**families_2026.ST6_EMPTY_PROMPTS, **families_2026.JINA_V3_PROMPTS},
        adapters=families_2026.JINA_V3_ADAPTERS,
    ),
    "gte": Family(
        families_2026.build_gte,
        "embed",
        "Alibaba-NLP/gte-multilingual-base",
        128,
        "XLMRobertaTokenizer",
        "cls",
        32,
        prompts=families_2026.ST6_EMPTY_PROMPTS,
    ),
    "nomic_bert": Family(
        families_2026.build_nomic_bert,
        "embed",
        "nomic-ai/nomic-embed-text-v1.5",
        128,
        "BertTokenizer",
        "mean",
        32,
        prompts=NOMIC_PROMPTS,
    ),
    "eurobert": Family(
        families_2026.build_eurobert,
        "embed",
        "EuroBERT/EuroBERT-210m",
        128,
        "TokenizersBackend",
        "mean",
        32,
        prompts=families_2026.ST6_EMPTY_PROMPTS,
    ),
    "ultrabert": Family(
        families_2026.build_ultrabert,
        "embed",
        "dmis-lab/UltraBERT-Embed-150M",
        128,
        "TokenizersBackend",
        "mean",
        32,
        prompts=families_2026.ULTRABERT_PROMPTS,
    ),
    "modernvbert": Family(
        families_2026_multimodal.build_modernvbert,
        "image-text",
        "ModernVBERT/bimodernvbert",
        128,
        "TokenizersBackend",
        "mean",
        32,
        prompts=families_2026.ST6_EMPTY_PROMPTS,
    ),
}
