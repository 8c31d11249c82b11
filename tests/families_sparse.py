"""Tiny random sparse encoders built at test time and saved by sentence-transformers 6: a
SPLADE model (a BERT masked-LM head, SPLADE max pooling, query and document prompts) and an
inference-free one (a Router: SPLADE for queries, SparseStaticEmbedding for documents)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tiny_models import SMALL, _bert_tokenizer, _seed, _vocab


def _splade_modules(folder: Path) -> list[Any]:
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    _bert_tokenizer(folder, BertTokenizerFast)
    _seed()
    size = len(dict.fromkeys(_vocab()))  # the tokenizer's: every id has a token
    config = BertConfig(
        vocab_size=size, max_position_embeddings=128, initializer_range=0.5, **SMALL
    )
    BertForMaskedLM(config).save_pretrained(folder)
    mlm = Transformer(str(folder), transformer_task="fill-mask")
    return [mlm, SpladePooling(pooling_strategy="max")]


def build_splade(folder: Path) -> Path:
    from sentence_transformers import SparseEncoder

    model = SparseEncoder(modules=_splade_modules(folder / "mlm"))
    model.prompts = {"query": "query: ", "document": ""}
    model.save_pretrained(str(folder / "model"))
    return folder / "model"


def build_inference_free(folder: Path) -> Path:
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Router
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding

    query = _splade_modules(folder / "mlm")
    _seed()
    weight = torch.rand(len(dict.fromkeys(_vocab()))) * 3  # each token of a document: its own
    static = SparseStaticEmbedding(tokenizer=query[0].tokenizer, weight=weight)
    router = Router.for_query_document(query_modules=query, document_modules=[static])
    SparseEncoder(modules=[router]).save_pretrained(str(folder / "model"))
    return folder / "model"
