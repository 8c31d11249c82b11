"""End to end: multi-vector (ColBERT-style) models, BERT and ModernBERT backbones, through the
real service (HTTP) and the RunPod worker, against sentence-transformers 6's
MultiVectorEncoder itself: token vectors (encode_query / encode_document / encode, one text
at a time), their encodings, and rerank and score by MaxSim (its `similarity`)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EMBED_ID
from tests.families_multi_vector import QUERY_LENGTH, build_colbert
from tests.runpod_procs import LocalApi, worker_env

COLBERT_ID, MODERN_ID = "tiny/colbert", "tiny/modern-colbert"
TEXTS = [" ".join(["the cat is happy"] * 8), "hello world", "paris is the capital of france"]
METHODS = {"search_query": "encode_query", "search_document": "encode_document", None: "encode"}


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_models) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multi-vector")
    return {
        COLBERT_ID: build_colbert(root / "colbert"),
        MODERN_ID: build_colbert(root / "modern", "modernbert"),
        EMBED_ID: tiny_models[EMBED_ID],
    }


def encoder(folder: Path):
    from sentence_transformers import MultiVectorEncoder

    return MultiVectorEncoder(str(folder), device="cpu")


def oracle(folder: Path, texts: list[str], input_type: str | None) -> list[np.ndarray]:
    model = encoder(folder)
    return [getattr(model, METHODS[input_type])([t])[0].numpy() for t in texts]


def assert_token_vectors(got: list, want: np.ndarray) -> None:
    got = np.asarray(got, dtype=np.float32)
    assert got.shape == want.shape
    cosines = (got * want).sum(axis=1) / (
        np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
    )
    assert cosines.min() >= 0.9999


@pytest.mark.parametrize("input_type", ["search_query", "search_document", None])
@pytest.mark.parametrize("model", [COLBERT_ID, MODERN_ID])
def test_token_vectors_equal_the_encoder_alone_and_batched(models_http, models, model, input_type):
    body = {"model": model, "input": TEXTS, **({"input_type": input_type} if input_type else {})}
    reply = models_http.post("/v1/embeddings", json=body)
    assert reply.status_code == 200, reply.text
    wanted = oracle(models[model], TEXTS, input_type)
    for item, want in zip(reply.json()["data"], wanted, strict=True):
        assert_token_vectors(item["embedding"], want)
    if input_type == "search_query":
        assert wanted[0].shape[0] == QUERY_LENGTH  # the query side's own length
    assert len({w.shape[0] for w in wanted}) > 1, "oracle too flat"


def test_base64_and_int8_encode_the_same_vectors(models_http, models):
    (want,) = oracle(models[COLBERT_ID], TEXTS[2:], "search_document")
    body = {"model": COLBERT_ID, "input": TEXTS[2:], "input_type": "document"}
    raw = models_http.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()
    floats = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert_token_vectors(floats.reshape(want.shape), want)
    int8 = models_http.post("/v1/embeddings", json={**body, "embedding_type": "int8"}).json()
    assert np.abs(np.asarray(int8["data"][0]["embedding"]) - np.rint(want * 127)).max() <= 1


@pytest.mark.parametrize(("input_type", "factor"), [("search_document", 2), ("search_query", 3)])
def test_token_pooling_equals_the_encoders_hierarchical_pooling(
    models_http, models, input_type, factor
):
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling

    pooling = HierarchicalTokenPooling(factor, tasks=["query", "document"])
    model = encoder(models[COLBERT_ID])
    method = getattr(model, METHODS[input_type])
    wanted = [method([text], token_pooling=pooling)[0].numpy() for text in TEXTS]
    body = {"model": COLBERT_ID, "input": TEXTS, "input_type": input_type, "pool_factor": factor}
    reply = models_http.post("/v1/embeddings", json=body)
    assert reply.status_code == 200, reply.text
    for item, want, text in zip(reply.json()["data"], wanted, TEXTS, strict=True):
        assert_token_vectors(item["embedding"], want)
        assert len(want) < len(method([text])[0]), "pooling kept every vector"


def test_rerank_and_score_are_the_models_maxsim(models_http, models):
    query, docs = "capital of france", ["paris is the capital of france", "a dog", TEXTS[0]]
    model = encoder(models[COLBERT_ID])
    want = model.similarity(model.encode_query([query]), model.encode_document(docs))[0].tolist()
    body = {"model": COLBERT_ID, "query": query, "documents": docs}
    reply = models_http.post("/v1/rerank", json=body).json()
    assert [r["index"] for r in reply["results"]] == sorted(range(3), key=lambda i: -want[i])
    by_index = {r["index"]: r["relevance_score"] for r in reply["results"]}
    assert [by_index[i] for i in range(3)] == pytest.approx(want, abs=1e-4)
    score = {"model": COLBERT_ID, "text_1": query, "text_2": docs}
    scores = [d["score"] for d in models_http.post("/v1/score", json=score).json()["data"]]
    assert scores == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/embeddings", {"model": COLBERT_ID, "input": "a", "dimensions": 8}, "dimensions"),
        ("/v1/embeddings", {"model": COLBERT_ID, "input": "a", "truncate": False}, "truncate"),
        (
            "/v1/rerank",
            {"model": COLBERT_ID, "query": "a", "documents": ["b"], "max_tokens_per_doc": 8},
            "max_tokens_per_doc",
        ),
        ("/v2/embed", {"model": COLBERT_ID, "texts": ["a"], "input_type": "query"}, "model"),
        ("/v1/embeddings", {"model": EMBED_ID, "input": "a", "pool_factor": 2}, "pool_factor"),
        ("/v1/embeddings", {"model": COLBERT_ID, "input": "a", "pool_factor": 0.5}, "pool_factor"),
    ],
)
def test_options_it_cannot_honour_get_a_clear_400(models_http, path, body, param):
    reply = models_http.post(path, json=body)
    assert reply.status_code == 400, reply.text
    assert "Traceback" not in reply.text
    assert param in (reply.json()["error"]["param"] or reply.json()["error"]["message"])


def test_models_card_names_its_outputs(models_http):
    cards = {m["id"]: m for m in models_http.get("/v1/models").json()["data"]}
    card = cards[COLBERT_ID]
    assert card["capabilities"] == ["multi_vector_embed", "rerank"]
    assert card["dimensions"] == 128 and card["similarity"] == "maxsim"


def test_runpod_native_embeddings_job(models_env, models):
    (want,) = oracle(models[COLBERT_ID], TEXTS[1:2], "search_query")
    job = {"model": COLBERT_ID, "input": TEXTS[1:2], "input_type": "query"}
    with LocalApi(worker_env(models_env)) as worker:
        output = worker.runsync(job)
    assert_token_vectors(output["data"][0]["embedding"], want)
