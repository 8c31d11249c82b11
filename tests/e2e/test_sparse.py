"""End to end: sparse embeddings through the real service (HTTP) and the RunPod worker, on
tiny sparse encoders built here, against sentence-transformers 6's SparseEncoder itself
(encode_query / encode_document / encode, one text at a time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EMBED_ID
from tests.families_sparse import build_inference_free, build_splade
from tests.runpod_procs import LocalApi, worker_env

SPLADE_ID, FREE_ID = "tiny/splade", "tiny/inference-free"
TEXTS = [
    "the cat is happy",
    "paris is the capital city of france and berlin is the capital of germany",
    "hello",
]
METHODS = {"search_query": "encode_query", "search_document": "encode_document", None: "encode"}


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_models) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sparse")
    return {
        SPLADE_ID: build_splade(root / "splade"),
        FREE_ID: build_inference_free(root / "free"),
        EMBED_ID: tiny_models[EMBED_ID],
    }


def oracle(folder: Path, texts: list[str], input_type: str | None) -> list[dict]:
    """Each text's non-zero dimensions, weights and tokens, one text at a time."""
    from sentence_transformers import SparseEncoder

    model = SparseEncoder(str(folder), device="cpu")
    rows = []
    for text in texts:
        dense = getattr(model, METHODS[input_type])([text])[0].to_dense()
        indices = dense.nonzero().flatten().tolist()
        tokens = {token: weight for token, weight in model.decode(dense, top_k=None)}
        rows.append(
            {
                "indices": indices,
                "values": dense[indices].tolist(),
                "tokens": sorted(tokens, key=lambda t: model.tokenizer.convert_tokens_to_ids(t)),
            }
        )
    return rows


def assert_sparse_equal(got: dict, want: dict) -> None:
    assert got["indices"] == want["indices"]
    assert got["values"] == pytest.approx(want["values"], abs=1e-5)


@pytest.mark.parametrize("input_type", ["search_query", "search_document", None])
@pytest.mark.parametrize("model", [SPLADE_ID, FREE_ID])
def test_vectors_equal_the_sparse_encoder_alone_and_batched(models_http, models, model, input_type):
    body = {"model": model, "input": TEXTS, "return_tokens": True}
    if input_type:
        body["input_type"] = input_type
    reply = models_http.post("/v1/embeddings", json=body)
    assert reply.status_code == 200, reply.text
    wanted = oracle(models[model], TEXTS, input_type)
    for item, want in zip(reply.json()["data"], wanted, strict=True):
        assert_sparse_equal(item["embedding"], want)
        assert item["embedding"]["tokens"] == want["tokens"]
    assert len({len(w["indices"]) for w in wanted}) > 1, "oracle too flat"


def test_query_and_document_sides_differ_on_an_inference_free_model(models_http):
    def indices(input_type: str) -> list[int]:
        body = {"model": FREE_ID, "input": TEXTS[0], "input_type": input_type}
        return models_http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"][
            "indices"
        ]

    assert len(indices("search_document")) < len(indices("search_query"))


def test_usage_is_the_tokenizers_count_with_the_prompt(models_http, models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(models[SPLADE_ID]))
    body = {"model": SPLADE_ID, "input": TEXTS, "input_type": "query"}
    usage = models_http.post("/v1/embeddings", json=body).json()["usage"]
    assert usage["prompt_tokens"] == sum(len(tokenizer("query: " + t)["input_ids"]) for t in TEXTS)


def test_top_k_and_threshold_prune_the_oracles_weights(models_http, models):
    (want,) = oracle(models[SPLADE_ID], TEXTS[1:2], None)
    body = {"model": SPLADE_ID, "input": TEXTS[1], "sparse_top_k": 5}
    got = models_http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    top = sorted(range(len(want["values"])), key=lambda i: -want["values"][i])[:5]
    assert got["indices"] == sorted(want["indices"][i] for i in top)
    threshold = sorted(want["values"])[len(want["values"]) // 2]
    body = {"model": SPLADE_ID, "input": TEXTS[1], "sparse_threshold": threshold}
    got = models_http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    kept = [i for i, v in zip(want["indices"], want["values"], strict=True) if v >= threshold]
    assert got["indices"] == kept


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": EMBED_ID, "input": "a", "return_tokens": True}, "sparse embeddings only"),
        ({"model": SPLADE_ID, "input": "a", "encoding_format": "base64"}, "encoding_format"),
        ({"model": SPLADE_ID, "input": "a", "dimensions": 8}, "dimensions"),
        ({"model": SPLADE_ID, "input": "a", "sparse_top_k": 0}, "sparse_top_k"),
    ],
)
def test_bad_sparse_requests_get_a_clear_400(models_http, body, fragment):
    reply = models_http.post("/v1/embeddings", json=body)
    assert reply.status_code == 400 and fragment in reply.json()["error"]["message"], reply.text


def test_models_list_sparse_encoders(models_http):
    cards = {m["id"]: m for m in models_http.get("/v1/models").json()["data"]}
    assert cards[SPLADE_ID]["capabilities"] == ["sparse_embed"]
    assert set(cards[SPLADE_ID]["prompts"]) == {"query", "document"}
    assert cards[SPLADE_ID]["max_input_tokens"] == 128


def test_runpod_native_and_openai_route_jobs(models_env, models):
    (want,) = oracle(models[SPLADE_ID], TEXTS[:1], "search_query")
    job = {"model": SPLADE_ID, "input": TEXTS[:1], "input_type": "search_query"}
    with LocalApi(worker_env(models_env)) as worker:
        native = worker.runsync(job)
        (routed,) = worker.runsync({"openai_route": "/v1/embeddings", "openai_input": job})
    assert_sparse_equal(native["data"][0]["embedding"], want)
    assert routed["data"] == native["data"]
