"""Infinity, as handlers/engine/infinity.py and infinity_runners.py use it, at the pin."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from tests.contract.pins import assert_pinned


def test_the_installed_version_is_the_pin():
    assert_pinned("infinity-emb")


def test_engine_args_take_every_field_we_set():
    """Every EngineArgs field is set from our Settings (none left to INFINITY_* variables)."""
    import infinity_emb
    from infinity_emb.primitives import DeviceID

    args = infinity_emb.EngineArgs(
        model_name_or_path="a/model",
        served_model_name="served",
        batch_size=8,
        revision=None,
        trust_remote_code=False,
        engine="torch",
        device="cpu",
        device_id=DeviceID([]),
        dtype="float32",
        model_warmup=False,
        vector_disk_cache_path="",
        compile=False,
        bettertransformer=False,
        pooling_method="auto",
        lengths_via_tokenize=False,
        embedding_dtype="float32",
        onnx_disable_optimize=True,
        onnx_do_not_prefer_quantized=False,
    )
    assert args.served_model_name == "served" and args.batch_size == 8
    assert {"ctranslate2", "torch"} <= {engine.value for engine in type(args.engine)}


def test_the_loader_and_the_model_classes_stages():
    from infinity_emb.inference.select_model import select_model
    from infinity_emb.transformer.abstract import BaseCrossEncoder, BaseEmbedder, BaseTIMM

    assert list(inspect.signature(select_model).parameters)[:1] == ["engine_args"]
    for base in (BaseCrossEncoder, BaseEmbedder, BaseTIMM):
        for stage in ("encode_pre", "encode_core", "encode_post"):
            assert callable(getattr(base, stage)), (base, stage)


@pytest.mark.slow
def test_select_model_loads_a_sentence_transformers_embedder(tmp_path: Path):
    """select_model gives (replicas, ...): a sentence-transformers model that is Infinity's
    BaseEmbedder, with the attributes the adapter reads."""
    import infinity_emb
    from infinity_emb.inference.select_model import select_model
    from infinity_emb.transformer.abstract import BaseEmbedder
    from sentence_transformers import SentenceTransformer

    from tests.tiny_models import build_bert_embedder

    folder = build_bert_embedder(tmp_path / "bert")
    engine_args: Any = infinity_emb.EngineArgs  # takes the enums' values, as the adapter passes
    args = engine_args(
        model_name_or_path=str(folder), engine="torch", device="cpu", model_warmup=False
    )
    replicas, _, _ = select_model(args)
    first = replicas[0]
    assert isinstance(first, BaseEmbedder) and isinstance(first, SentenceTransformer)
    assert first.tokenizer.is_fast and isinstance(first.max_seq_length, int)
    features = first.encode_pre(["a text"])
    assert first.encode_post(first.encode_core(features)).shape[0] == 1
