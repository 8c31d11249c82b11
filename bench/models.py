"""Benchmark models built offline: a MiniLM-L6 cross-encoder and a ViT-B/32-sized CLIP."""

from __future__ import annotations

from pathlib import Path

from tests.tiny_models import build_clip

__all__ = ["build_clip_b32", "build_minilm_reranker"]

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
