"""Benchmark models built offline: a MiniLM-L6 cross-encoder, a ViT-B/32-sized CLIP, and for
the outputs beyond dense a MiniLM-L6 SPLADE and ColBERT and a small Qwen3-style LLM reranker."""

from __future__ import annotations

from pathlib import Path

from tests.tiny_models import build_clip

__all__ = [
    "build_clip_b32",
    "build_llm_reranker",
    "build_minilm_colbert",
    "build_minilm_reranker",
    "build_minilm_splade",
]

# CLIP ViT-B/32's vision tower (openai/clip-vit-base-patch32): 224 px, patch 32, 12 layers.
VIT_B32 = {
    "image_size": 224,
    "patch_size": 32,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
}


def build_minilm_reranker(bundled: str, folder: Path) -> Path:
    """The bundled all-MiniLM-L6-v2 encoder with a seeded one-label head: the architecture
    and cost of cross-encoder/ms-marco-MiniLM-L-6-v2 (its scores mean nothing)."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    BertForSequenceClassification.from_pretrained(bundled, num_labels=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(bundled).save_pretrained(folder)
    return folder


def build_clip_b32(folder: Path) -> Path:
    """A CLIP with ViT-B/32's vision tower (random weights, seeded): its image cost."""
    return build_clip(folder, vision=VIT_B32)


def build_minilm_splade(bundled: str, folder: Path) -> Path:
    """The bundled MiniLM-L6 with a seeded masked-LM head (its 30,522-token vocabulary) and
    SPLADE max pooling, saved as a SparseEncoder: the cost of a MiniLM-sized SPLADE. The
    head's bias is set so that a chunk has ~50-300 active dimensions, as a trained SPLADE's
    (random logits would make every dimension active, and replies 100 times larger)."""
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling
    from transformers import AutoTokenizer, BertForMaskedLM

    torch.manual_seed(0)
    mlm_model = BertForMaskedLM.from_pretrained(bundled)
    with torch.no_grad():
        mlm_model.cls.predictions.bias.fill_(-4.6)
    mlm_model.save_pretrained(folder / "mlm")
    AutoTokenizer.from_pretrained(bundled).save_pretrained(folder / "mlm")
    mlm = Transformer(str(folder / "mlm"), transformer_task="fill-mask")
    model = SparseEncoder(modules=[mlm, SpladePooling(pooling_strategy="max")], device="cpu")
    model.save_pretrained(str(folder / "model"))
    return folder / "model"


def build_minilm_colbert(bundled: str, folder: Path) -> Path:
    """The bundled MiniLM-L6 as sentence-transformers 6's default ColBERT (a seeded 128-wide
    projection, skiplist, normalisation), saved as a MultiVectorEncoder."""
    import torch
    from sentence_transformers import MultiVectorEncoder
    from transformers import AutoTokenizer, BertModel

    torch.manual_seed(0)
    BertModel.from_pretrained(bundled).save_pretrained(folder / "bert")
    AutoTokenizer.from_pretrained(bundled).save_pretrained(folder / "bert")
    MultiVectorEncoder(str(folder / "bert"), device="cpu").save_pretrained(str(folder / "model"))
    return folder / "model"


def build_llm_reranker(folder: Path) -> Path:
    """A Qwen3ForCausalLM (hidden 256, 4 layers, grouped-query attention; seeded weights)
    with a byte-level BPE that has "yes" and "no", saved by sentence-transformers 6 as a
    causal-LM CrossEncoder, as Qwen3-Reranker's original checkpoints load: the test
    family's builder at a larger size."""
    from tests.families_llm_rerankers import build_llm_reranker as build

    sizes = {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4}
    sizes |= {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64}
    return build(folder, max_length=512, **sizes)
