"""TEI's integrations as they are, pointed at the real service: huggingface_hub's
InferenceClient (POST /), LlamaIndex's TextEmbeddingsInference (/embed) and Haystack's
TEI components (/, /embed_sparse, /rerank). Every vector equals a plain /v1/embeddings
request's (cos >= 0.9999) and every score /v1/rerank's or /v1/classify's; TEI's request
shapes, good and bad, get TEI's replies, statuses and error bodies; RunPod jobs too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import EMBED_ID, RERANK_ID
from tests.e2e.test_clients import assert_same_vectors
from tests.families_classifiers import build_sentiment
from tests.families_sparse import build_splade
from tests.runpod_procs import LocalApi, worker_env
from tests.servers import ServiceProcess, serving

# Haystack sends usage telemetry unless told not to; tests reach loopback only
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"

SPLADE_ID, SENTIMENT_ID = "tiny/splade", "tiny/sentiment"
TEXTS = ["the quick brown fox jumps over the lazy dog", "paris is the capital city of france"]
QUERY = "capital of france"
DOCS = ["a cat on the house", "paris is the capital city of france", "the weather today"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_models) -> dict[str, Path]:
    """The embedder first: TEI's routes answer for the first model that can run them."""
    root = tmp_path_factory.mktemp("tei")
    return {
        EMBED_ID: tiny_models[EMBED_ID],
        RERANK_ID: tiny_models[RERANK_ID],
        SPLADE_ID: build_splade(root / "splade"),
        SENTIMENT_ID: build_sentiment(root / "sentiment"),
    }


@pytest.fixture(scope="module")
def url(models_http) -> str:
    return str(models_http.base_url).rstrip("/")


@pytest.fixture(scope="module")
def classifier_url(models) -> Iterator[str]:
    """A server whose first model is the classifier (its POST / predicts, as TEI's)."""
    with ServiceProcess(serving({SENTIMENT_ID: models[SENTIMENT_ID]})) as server:
        yield server.url


def as_a_user(code: str, **values) -> object:
    """Run `code` (which sets `result`, JSON-able) in a process of its own, as a user's
    program: huggingface_hub's clients refuse every request, loopback included, in the
    offline mode the test process runs in (HF_HUB_OFFLINE, for the models' loading).
    `values` are its globals; no telemetry leaves it."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env |= {"HF_HUB_DISABLE_TELEMETRY": "1", "HAYSTACK_TELEMETRY_ENABLED": "False"}
    program = f"import json\nglobals().update(json.loads({json.dumps(json.dumps(values))}))\n"
    program += textwrap.dedent(code) + "\nprint(json.dumps(result))\n"
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def plain(http: httpx.Client, texts: list[str], **options) -> np.ndarray:
    body = {"model": EMBED_ID, "input": texts, **options}
    reply = http.post("/v1/embeddings", json=body)
    assert reply.status_code == 200, reply.text
    return np.array([item["embedding"] for item in reply.json()["data"]], dtype=np.float64)


def rerank_scores(http: httpx.Client) -> dict[int, float]:
    body = {"model": RERANK_ID, "query": QUERY, "documents": DOCS}
    results = http.post("/v1/rerank", json=body).json()["results"]
    return {r["index"]: r["relevance_score"] for r in results}


def test_inference_client_feature_extraction_and_similarity_post_to_the_root(models_http, url):
    got = as_a_user(
        """
        from huggingface_hub import InferenceClient
        client = InferenceClient(url)
        result = {
            "one": client.feature_extraction(texts[0]).tolist(),
            "raw": client.feature_extraction(texts[1], normalize=False, truncate=True).tolist(),
            "similarity": client.sentence_similarity(query, other_sentences=docs),
        }
        """,
        url=url,
        texts=TEXTS,
        query=QUERY,
        docs=DOCS,
    )
    assert_same_vectors(got["one"], plain(models_http, TEXTS[:1]))
    assert_same_vectors(got["raw"], plain(models_http, TEXTS[1:], normalize=False))
    assert np.linalg.norm(got["raw"]) != pytest.approx(1.0, abs=1e-3)
    vectors = plain(models_http, [QUERY, *DOCS])
    want = [float(vectors[0] @ v) for v in vectors[1:]]
    assert got["similarity"] == pytest.approx(want, abs=1e-5)


def test_inference_client_text_classification_on_a_classifier(models_http, classifier_url):
    got = as_a_user(
        """
        from huggingface_hub import InferenceClient
        found = InferenceClient(url).text_classification("what a great day")
        found = found if isinstance(found, list) else [found]  # TEI's list: its top
        result = [found[0].label, found[0].score]
        """,
        url=classifier_url,
    )
    body = {"model": SENTIMENT_ID, "input": "what a great day"}
    (want,) = models_http.post("/v1/classify", json=body).json()["data"]
    assert got == [want["label"], pytest.approx(max(want["probs"]))]


def test_llamaindex_text_embeddings_inference(models_http, url):
    from llama_index.embeddings.text_embeddings_inference import TextEmbeddingsInference

    embedder = TextEmbeddingsInference(model_name=EMBED_ID, base_url=url, embed_batch_size=8)
    assert_same_vectors([embedder.get_text_embedding(TEXTS[0])], plain(models_http, TEXTS[:1]))
    batch = embedder.get_text_embedding_batch(TEXTS)
    assert_same_vectors(batch, plain(models_http, TEXTS))
    assert_same_vectors([embedder.get_query_embedding(QUERY)], plain(models_http, [QUERY]))


def test_haystack_text_and_document_embedders(models_http, url):
    got = as_a_user(
        """
        from haystack import Document
        from haystack_integrations.components.embedders.huggingface_api import (
            HuggingFaceAPIDocumentEmbedder,
            HuggingFaceAPITextEmbedder,
        )
        params = {"api_type": "text_embeddings_inference", "api_params": {"url": url}}
        text = HuggingFaceAPITextEmbedder(**params).run(text=texts[0])["embedding"]
        docs = [Document(content=t) for t in texts]
        embedded = HuggingFaceAPIDocumentEmbedder(**params).run(documents=docs)["documents"]
        result = {"text": text, "documents": [d.embedding for d in embedded]}
        """,
        url=url,
        texts=TEXTS,
    )
    assert_same_vectors([got["text"]], plain(models_http, TEXTS[:1], normalize=False))
    assert_same_vectors(got["documents"], plain(models_http, TEXTS, normalize=False))


def test_haystack_sparse_embedder_reads_embed_sparse(models_http, url):
    from haystack_integrations.components.embedders.huggingface_api import (
        HuggingFaceTEISparseTextEmbedder,
    )

    got = HuggingFaceTEISparseTextEmbedder(api_base_url=url).run(text=TEXTS[1])
    body = {"model": SPLADE_ID, "input": TEXTS[1]}
    (want,) = models_http.post("/v1/embeddings", json=body).json()["data"]
    assert got["sparse_embedding"].indices == want["embedding"]["indices"]
    assert got["sparse_embedding"].values == pytest.approx(want["embedding"]["values"], abs=1e-6)


def test_haystack_tei_ranker(models_http, url):
    from haystack import Document
    from haystack_integrations.components.rankers.huggingface_api import HuggingFaceTEIRanker

    ranked = HuggingFaceTEIRanker(url=url, top_k=2).run(
        query=QUERY, documents=[Document(content=d) for d in DOCS]
    )["documents"]
    want = rerank_scores(models_http)
    best = sorted(want, key=want.__getitem__, reverse=True)[:2]
    assert [d.content for d in ranked] == [DOCS[i] for i in best]
    assert [d.score for d in ranked] == pytest.approx([want[i] for i in best], abs=1e-6)


def test_tei_shapes_of_the_other_routes(models_http):
    post = models_http.post
    tokens = post("/tokenize", json={"inputs": "paris"}).json()
    assert tokens[0][0]["special"] and tokens[0][1]["text"] == "paris"
    assert tokens[0][1]["start"] == 0 and tokens[0][1]["stop"] == 5
    ids = [t["id"] for t in tokens[0]]
    assert post("/decode", json={"ids": ids}).json() == ["paris"]
    info = models_http.get("/info").json()
    assert info["model_id"] == EMBED_ID and info["model_type"] == {"embedding": {"pooling": "mean"}}
    predicted = post("/predict", json={"inputs": "a fine day"}).json()
    cards = {m["id"]: m for m in models_http.get("/v1/models").json()["data"]}
    assert sorted(p["label"] for p in predicted) == sorted(cards[SENTIMENT_ID]["classes"]["labels"])
    assert [p["score"] for p in predicted] == sorted((p["score"] for p in predicted), reverse=True)
    body = {"query": QUERY, "texts": DOCS, "return_text": True}
    ranked = post("/rerank", json=body).json()
    want = rerank_scores(models_http)
    assert [r["score"] for r in ranked] == pytest.approx(sorted(want.values(), reverse=True))
    assert ranked[0]["text"] == DOCS[ranked[0]["index"]]
    infinity = post("/rerank", json={"query": QUERY, "documents": DOCS}).json()
    assert infinity["object"] == "rerank"
    embed_all = post("/embed_all", json={"inputs": "a"})
    assert embed_all.status_code == 424 and embed_all.json()["error_type"] == "Backend"


@pytest.mark.parametrize(
    ("route", "body", "status", "kind"),
    [
        ("/embed", {"inputs": []}, 400, "Empty"),
        ("/embed", {"inputs": ""}, 400, "Empty"),
        ("/embed", {"inputs": ["a"] * 3000}, 422, "Validation"),
        ("/embed", {"inputs": "word " * 400, "truncate": False}, 422, "Validation"),
        ("/embed", {"inputs": "a", "truncation_direction": "up"}, 422, "Validation"),
        ("/embed", {"input": "a"}, 422, "Validation"),
        ("/rerank", {"query": "q", "texts": []}, 400, "Empty"),
        ("/rerank", {"query": "q"}, 422, "Validation"),
        ("/similarity", {"inputs": {"source_sentence": "a", "sentences": []}}, 400, "Empty"),
        ("/decode", {"ids": []}, 400, "Empty"),
    ],
)
def test_bad_tei_requests_get_teis_status_and_error_body(models_http, route, body, status, kind):
    reply = models_http.post(route, json=body)
    assert reply.status_code == status, reply.text
    assert set(reply.json()) == {"error", "error_type"} and reply.json()["error_type"] == kind


def test_runpod_openai_route_jobs_on_tei_routes(models_env, models_http):
    with LocalApi(worker_env(models_env)) as worker:
        # openai_route outputs come wrapped in a one-element list (docs/runpod.md)
        (vectors,) = worker.runsync({"openai_route": "/embed", "openai_input": {"inputs": TEXTS}})
        (ranked,) = worker.runsync(
            {"openai_route": "/rerank", "openai_input": {"query": QUERY, "texts": DOCS}}
        )
    assert_same_vectors(vectors, plain(models_http, TEXTS))
    assert {r["index"]: r["score"] for r in ranked} == pytest.approx(rerank_scores(models_http))
