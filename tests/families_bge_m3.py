"""A tiny random BGE-M3-like model built at test time: XLM-R with the Unigram tokenizer and a
CLS-pooled, normalised sentence-transformers pipeline (its dense output), and FlagEmbedding's
`sparse_linear` (hidden -> 1) and `colbert_linear` (hidden -> hidden) heads saved beside it
as torch state dicts, as BAAI/bge-m3 ships them."""

from __future__ import annotations

from pathlib import Path

from tests.families_encoders import build_xlmr
from tests.tiny_models import SMALL, _seed


def build_bge_m3(folder: Path) -> Path:
    import torch

    build_xlmr(folder)
    _seed()
    hidden = SMALL["hidden_size"]
    for name, out in (("sparse_linear", 1), ("colbert_linear", hidden)):
        torch.save(torch.nn.Linear(hidden, out).state_dict(), folder / f"{name}.pt")
    return folder
