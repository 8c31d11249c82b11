"""End to end: /v1/classify, /classify and /v1/score through the real service (HTTP) and
the RunPod worker, on tiny classifiers built here, against the models' own libraries:
transformers' text-classification pipeline (single texts) and sentence-transformers 6's
CrossEncoder (pairs, and a reranker's scores), SentenceTransformer's vectors (cosines)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EMBED_ID, RERANK_ID
from tests.families_classifiers import NLI, build_nli, build_sentiment, build_topics
from tests.oracles import TOLERANCE, embed_oracle
from tests.runpod_procs import LocalApi, assert_error, worker_env

SENTIMENT_ID, TOPICS_ID, NLI_ID = "tiny/sentiment", "tiny/topics", "tiny/nli"
TEXTS = ["the food was happy", "a sad cold day", "paris is the capital of france", "hello"]
PAIRS = [
    ["a cat is on the house", "the cat is happy"],
    ["it is cold today", "the weather is hot"],
    ["hello world", "the quick brown fox jumps over the lazy dog"],
]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_models) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("classifiers")
    return {
        SENTIMENT_ID: build_sentiment(root / "sentiment"),
        TOPICS_ID: build_topics(root / "topics"),
        NLI_ID: build_nli(root / "nli"),
        RERANK_ID: tiny_models[RERANK_ID],
        EMBED_ID: tiny_models[EMBED_ID],
    }


@pytest.fixture(scope="module")
def worker(models_env) -> Iterator[LocalApi]:
    with LocalApi(worker_env(models_env)) as api:
        yield api


def pipeline_scores(folder: Path, texts: list[str]) -> list[dict[str, float]]:
    """transformers' text-classification pipeline (every label, its own activation)."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(folder), top_k=None, device="cpu")
    return [{e["label"]: e["score"] for e in row} for row in classify(texts)]


def cross_encoder(folder: Path, pairs: list[list[str]], **options) -> np.ndarray:
    from sentence_transformers import CrossEncoder

    return np.asarray(CrossEncoder(str(folder), device="cpu").predict(pairs, **options))


def assert_probabilities(data: list[dict], expected: list[dict[str, float]], labels) -> None:
    assert len(data) == len(expected)
    for index, (item, want) in enumerate(zip(data, expected, strict=True)):
        assert item["index"] == index and item["num_classes"] == len(labels)
        assert item["probs"] == pytest.approx([want[label] for label in labels], abs=TOLERANCE)
        assert item["label"] == max(want, key=want.__getitem__)


def test_single_texts_equal_the_pipeline(models_http, models):
    reply = models_http.post("/v1/classify", json={"model": SENTIMENT_ID, "input": TEXTS})
    assert reply.status_code == 200, reply.text
    labels = ("negative", "neutral", "positive")
    expected = pipeline_scores(models[SENTIMENT_ID], TEXTS)
    assert_probabilities(reply.json()["data"], expected, labels)
    assert len({item["label"] for item in reply.json()["data"]}) > 1, "oracle too flat"
    tokenizer_counts = sum(len(t.split()) + 2 for t in TEXTS)  # one token per word here
    assert reply.json()["usage"]["prompt_tokens"] == tokenizer_counts


def test_infinity_route_lists_labels_as_the_pipeline_does(models_http, models):
    reply = models_http.post("/classify", json={"model": SENTIMENT_ID, "input": TEXTS[:2]}).json()
    expected = pipeline_scores(models[SENTIMENT_ID], TEXTS[:2])
    for got, want in zip(reply["data"], expected, strict=True):
        assert [e["label"] for e in got] == sorted(want, key=want.__getitem__, reverse=True)
        for entry in got:
            assert entry["score"] == pytest.approx(want[entry["label"]], abs=TOLERANCE)


def test_multi_label_scores_are_independent_sigmoids(models_http, models):
    data = models_http.post("/v1/classify", json={"model": TOPICS_ID, "input": TEXTS}).json()[
        "data"
    ]
    expected = pipeline_scores(models[TOPICS_ID], TEXTS)
    assert_probabilities(data, expected, ("sports", "politics", "science", "travel"))
    assert any(abs(sum(item["probs"]) - 1) > 0.1 for item in data)


def test_pairs_equal_the_cross_encoder_alone_and_in_a_batch(models_http, models):
    mixed = [PAIRS[0], "a lone text", *PAIRS[1:]]
    data = models_http.post("/v1/classify", json={"model": NLI_ID, "input": mixed}).json()["data"]
    want = cross_encoder(models[NLI_ID], PAIRS, apply_softmax=True)
    pairs_data = [data[0], *data[2:]]
    for item, row in zip(pairs_data, want, strict=True):
        assert item["probs"] == pytest.approx(row.tolist(), abs=TOLERANCE)
        assert item["label"] == NLI[int(np.argmax(row))]
    raw = models_http.post(
        "/v1/classify", json={"model": NLI_ID, "input": [PAIRS[1]], "raw_scores": True}
    ).json()["data"][0]["probs"]
    assert raw == pytest.approx(cross_encoder(models[NLI_ID], [PAIRS[1]])[0].tolist(), abs=1e-4)


def test_score_by_a_reranker_equals_the_cross_encoder_and_rerank(models_http, models):
    query, docs = "capital of france", ["paris is the capital of france", "a dog", "berlin"]
    reply = models_http.post(
        "/v1/score", json={"model": RERANK_ID, "text_1": query, "text_2": docs}
    )
    scores = [d["score"] for d in reply.json()["data"]]
    want = cross_encoder(models[RERANK_ID], [[query, d] for d in docs])  # sigmoid: 1 label
    assert scores == pytest.approx(want.tolist(), abs=TOLERANCE)
    ranked = models_http.post(
        "/v1/rerank", json={"model": RERANK_ID, "query": query, "documents": docs}
    )
    by_index = {r["index"]: r["relevance_score"] for r in ranked.json()["results"]}
    assert scores == pytest.approx([by_index[i] for i in range(len(docs))], abs=1e-6)


def test_score_by_an_embedder_is_the_cosine_of_its_vectors(models_http, models):
    first, seconds = ["a cat", "red car"], ["the cat is happy", "a blue car"]
    reply = models_http.post("/score", json={"model": EMBED_ID, "text_1": first, "text_2": seconds})
    vectors = embed_oracle(models[EMBED_ID], first + seconds)
    want = [float(vectors[i] @ vectors[i + 2]) for i in range(2)]
    assert [d["score"] for d in reply.json()["data"]] == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/classify", {"model": SENTIMENT_ID, "input": ["ok", ["a", "b"]]}, 400, "input[1]"),
        ("/v1/classify", {"model": NLI_ID, "input": []}, 400, "input"),
        ("/v1/classify", {"model": EMBED_ID, "input": ["a"]}, 400, "'classify' capability"),
        ("/v1/classify", {"input": ["a"]}, 400, "3 classifiers"),
        ("/v1/score", {"model": NLI_ID, "text_1": "a", "text_2": "b"}, 400, "cannot score"),
        ("/v1/score", {"model": RERANK_ID, "text_1": ["a", "b"], "text_2": ["c"]}, 400, "text_1"),
    ],
)
def test_bad_requests_get_a_clear_4xx(models_http, path, body, status, fragment):
    reply = models_http.post(path, json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert fragment in error["message"] and "Traceback" not in reply.text


def test_models_name_each_classifiers_labels(models_http):
    cards = {m["id"]: m for m in models_http.get("/v1/models").json()["data"]}
    assert cards[NLI_ID]["capabilities"] == ["classify"]
    assert cards[NLI_ID]["classes"] == {"labels": list(NLI), "pairs": True, "multi_label": False}
    assert cards[TOPICS_ID]["classes"]["multi_label"] is True
    assert cards[SENTIMENT_ID]["classes"]["pairs"] is False
    assert "classes" not in cards[EMBED_ID]


def test_runpod_classify_and_score(worker, models):
    """openai_route jobs: each output a one-element list holding the HTTP reply."""
    (output,) = worker.runsync(
        {"openai_route": "/v1/classify", "openai_input": {"model": NLI_ID, "input": PAIRS[:1]}}
    )
    want = cross_encoder(models[NLI_ID], PAIRS[:1], apply_softmax=True)[0]
    assert output["data"][0]["probs"] == pytest.approx(want.tolist(), abs=TOLERANCE)
    body = {"model": RERANK_ID, "text_1": "a cat", "text_2": ["the cat", "paris"]}
    (output,) = worker.runsync({"openai_route": "/v1/score", "openai_input": body})
    want = cross_encoder(models[RERANK_ID], [["a cat", "the cat"], ["a cat", "paris"]])
    assert [d["score"] for d in output["data"]] == pytest.approx(want.tolist(), abs=TOLERANCE)
    bad = {"model": SENTIMENT_ID, "input": [["a", "b"]]}
    output = worker.runsync({"openai_route": "/v1/classify", "openai_input": bad})
    assert_error(output, 400, None, "input[0] is a pair")


def test_runpod_native_classify_and_score_jobs(worker, models):
    """Native jobs: an `input` job for a classifier classifies, `text_1`/`text_2` scores;
    each output the HTTP reply itself."""
    output = worker.runsync({"model": NLI_ID, "input": PAIRS[:2]})
    want = cross_encoder(models[NLI_ID], PAIRS[:2], apply_softmax=True)
    for item, probs in zip(output["data"], want, strict=True):
        assert item["probs"] == pytest.approx(probs.tolist(), abs=TOLERANCE)
    output = worker.runsync({"model": RERANK_ID, "text_1": "a cat", "text_2": ["the cat", "x"]})
    want = cross_encoder(models[RERANK_ID], [["a cat", "the cat"], ["a cat", "x"]])
    assert [d["score"] for d in output["data"]] == pytest.approx(want.tolist(), abs=TOLERANCE)
    embedded = worker.runsync({"model": EMBED_ID, "input": ["a cat"]})
    assert embedded["object"] == "list" and len(embedded["data"][0]["embedding"]) > 2
    assert_error(worker.runsync({"model": SENTIMENT_ID, "input": [["a", "b"]]}), 400, None, "pair")
