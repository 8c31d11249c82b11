"""sentence-transformers, as the engine's runners and the model check use it, at the pin."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tests.contract.pins import assert_pinned


def test_the_installed_version_is_the_pin():
    assert_pinned("sentence-transformers")


def _params(function: object) -> set[str]:
    return set(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_classes_take_the_keywords_we_pass():
    from sentence_transformers import CrossEncoder, SentenceTransformer

    assert {"device", "trust_remote_code", "revision"} <= _params(SentenceTransformer)
    assert {"batch_size", "normalize_embeddings"} <= _params(SentenceTransformer.encode)
    assert {"device", "trust_remote_code"} <= _params(CrossEncoder)
    assert {"batch_size", "activation_fn"} <= _params(CrossEncoder.predict)
    for name in ("modalities", "max_seq_length", "tokenizer", "device"):
        assert isinstance(inspect.getattr_static(SentenceTransformer, name), property), name
    assert list(inspect.signature(SentenceTransformer.preprocess).parameters)[:2] == [
        "self",
        "inputs",
    ]


def test_the_modules_and_helpers_we_run_ourselves():
    import torch
    from sentence_transformers.sentence_transformer.modules import Normalize, Transformer
    from sentence_transformers.util import batch_to_device

    assert issubclass(Transformer, torch.nn.Module)
    out = Normalize()({"sentence_embedding": torch.tensor([[3.0, 4.0]])})
    assert torch.allclose(out["sentence_embedding"], torch.tensor([[0.6, 0.8]]))
    moved = batch_to_device({"input_ids": torch.ones(1, 2), "n": 1}, torch.device("cpu"))
    assert moved["input_ids"].device.type == "cpu" and moved["n"] == 1


@pytest.mark.slow
def test_a_loaded_embedder_preprocesses_and_iterates_its_modules(tmp_path: Path):
    """What st_runner.py, bge_m3.py and infinity_runners.py read of a loaded model."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Transformer

    from tests.tiny_models import build_bert_embedder

    model = SentenceTransformer(str(build_bert_embedder(tmp_path / "bert")), device="cpu")
    assert "text" in model.modalities and isinstance(model.max_seq_length, int)
    assert type(model[0]) is Transformer and model.tokenizer.is_fast
    features = model.preprocess(["a text"])
    assert {"input_ids", "attention_mask"} <= set(features)
    for module in model:  # the forward pass, module by module, as the runners run it
        features = module(features)
    assert features["sentence_embedding"].shape[0] == 1
    # bge_m3.py's heads read the last hidden states and the ids beside them
    count = int(features["attention_mask"].sum())
    assert features["token_embeddings"].shape[:2] == features["input_ids"].shape == (1, count)


def test_the_model_classes_beyond_dense_take_what_their_runners_pass():
    """What sparse.py, multi_vector.py and llm_reranker.py call: each class by name
    (st_runner.open_model), its preprocess with a prompt and a task, the prompts and the
    names it saves itself under (identity.saved_model_type)."""
    import sentence_transformers
    from sentence_transformers import CrossEncoder, MultiVectorEncoder, SparseEncoder
    from sentence_transformers.cross_encoder.modules import LogitScore

    for cls in (SparseEncoder, MultiVectorEncoder, CrossEncoder):
        assert getattr(sentence_transformers, cls.__name__) is cls
        assert {"device", "trust_remote_code", "revision"} <= _params(cls)
        assert {"inputs", "prompt"} <= _params(cls.preprocess)
        takes = inspect.signature(cls.preprocess).parameters.values()  # task=: a keyword
        assert any(p.name == "task" or p.kind is p.VAR_KEYWORD for p in takes)
        assert cls.model_type == cls.__name__  # config_sentence_transformers.json's model_type
    assert isinstance(inspect.getattr_static(MultiVectorEncoder, "similarity_fn_name"), property)
    assert {"true_token_id", "false_token_id"} <= _params(LogitScore)
