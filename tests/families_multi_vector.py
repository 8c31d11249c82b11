"""A tiny random ColBERT-style model built at test time and saved by sentence-transformers 6
as a MultiVectorEncoder: a BERT backbone, a 128-dimension projection, the skiplist mask and
normalisation sentence-transformers adds, query and document prompts and a query length."""

from __future__ import annotations

from pathlib import Path

from tests.tiny_models import SMALL, _bert_tokenizer, _seed, _vocab

QUERY_LENGTH = 12


def build_colbert(folder: Path) -> Path:
    from sentence_transformers import MultiVectorEncoder
    from transformers import BertConfig, BertModel, BertTokenizerFast

    _bert_tokenizer(folder / "bert", BertTokenizerFast)
    _seed()
    size = len(dict.fromkeys(_vocab()))
    BertModel(BertConfig(vocab_size=size, max_position_embeddings=128, **SMALL)).save_pretrained(
        folder / "bert"
    )
    model = MultiVectorEncoder(str(folder / "bert"), device="cpu")
    model.prompts = {"query": "query ", "document": "document "}
    model[0].query_length = QUERY_LENGTH
    model.save_pretrained(str(folder / "model"))
    return folder / "model"
