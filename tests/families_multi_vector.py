"""Tiny random ColBERT-style models built at test time and saved by sentence-transformers 6
as MultiVectorEncoders: a BERT or a ModernBERT backbone, a 128-dimension projection, the
skiplist mask and normalisation sentence-transformers adds, query and document prompts and a
query length."""

from __future__ import annotations

from pathlib import Path

from tests.families_encoders import modernbert_backbone
from tests.tiny_models import SMALL, _bert_tokenizer, _seed, _vocab

QUERY_LENGTH = 12


def build_colbert(folder: Path, backbone: str = "bert") -> Path:
    from sentence_transformers import MultiVectorEncoder

    source = folder / backbone
    if backbone == "modernbert":
        modernbert_backbone(source)
    else:
        _bert_backbone(source)
    model = MultiVectorEncoder(str(source), device="cpu")
    model.prompts = {"query": "query ", "document": "document "}
    model[0].query_length = QUERY_LENGTH
    model.save_pretrained(str(folder / "model"))
    return folder / "model"


def _bert_backbone(folder: Path) -> None:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    _bert_tokenizer(folder, BertTokenizerFast)
    _seed()
    size = len(dict.fromkeys(_vocab()))
    BertModel(BertConfig(vocab_size=size, max_position_embeddings=128, **SMALL)).save_pretrained(
        folder
    )
