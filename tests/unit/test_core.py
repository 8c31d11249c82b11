"""The request core with a fake backend: validation, dispatch, shaping, typed errors."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from handlers.core.dispatch import Core
from handlers.errors import ErrorKind
from tests.fake_media import FakeMedia
from tests.fakes import FakeBackend, fake_vector
from tests.helpers import error_of


@pytest.fixture
def core(make_settings, backend):
    """The unit core with at most 4 items per request."""
    return Core(make_settings(max_client_batch_size=4), backend, FakeMedia())


async def test_models_lists_capabilities(core):
    body = await core.dispatch("/v1/models")
    assert body["object"] == "list"
    assert [(m["id"], m["capabilities"]) for m in body["data"]] == [
        ("embedder", ["embed"]),
        ("reranker", ["rerank"]),
        ("clip", ["embed", "image_embed"]),
        ("splade", ["sparse_embed"]),
        ("sentiment", ["classify"]),
        ("nli", ["classify"]),
    ]
    assert all(m["object"] == "model" and m["owned_by"] == "infinity" for m in body["data"])


async def test_embeddings_float_keeps_order_and_counts_usage(core):
    body = await core.dispatch("/v1/embeddings", {"model": "embedder", "input": ["a b", "c"]})
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert np.allclose(body["data"][1]["embedding"], fake_vector("c"))
    assert body["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    assert body["id"].startswith("infinity-") and isinstance(body["created"], int)
    assert body["model"] == "embedder" and body["object"] == "list"


async def test_single_string_and_empty_list(core, backend):
    single = await core.dispatch("/v1/embeddings", {"model": "embedder", "input": ""})
    assert len(single["data"]) == 1
    empty = await core.dispatch("/v1/embeddings", {"model": "embedder", "input": []})
    assert empty["data"] == [] and empty["usage"]["total_tokens"] == 0
    assert backend.calls == [("embed", [""])]


async def test_base64_is_little_endian_float32(core):
    body = await core.dispatch(
        "/v1/embeddings", {"model": "embedder", "input": "x", "encoding_format": "base64"}
    )
    decoded = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, fake_vector("x"))


async def test_dimensions_truncate_and_renormalise(core):
    body = await core.dispatch(
        "/v1/embeddings", {"model": "embedder", "input": "x", "dimensions": 3}
    )
    vec = np.array(body["data"][0]["embedding"])
    assert vec.shape == (3,)
    assert np.isclose(np.linalg.norm(vec), 1.0)
    expected = fake_vector("x")[:3]
    assert np.allclose(vec, expected / np.linalg.norm(expected), atol=1e-6)


@pytest.mark.parametrize(
    ("body", "kind", "fragment"),
    [
        (
            {"model": "nope", "input": "a"},
            ErrorKind.NOT_FOUND,
            "Model 'nope' is not deployed. Available deployments: embedder, reranker, clip, "
            "splade, sentiment, nli.",
        ),
        (
            {"model": "reranker", "input": "a"},
            ErrorKind.INVALID,
            "Model 'reranker' does not expose the 'embed' capability. Detected capabilities: "
            "rerank.",
        ),
        (
            {"model": "embedder", "input": ["a"], "modality": "image"},
            ErrorKind.INVALID,
            "Model 'embedder' does not expose the 'image' capability. Detected capabilities: "
            "embed.",
        ),
        ({"model": "embedder", "input": [1, 2, 3]}, ErrorKind.INVALID, "token-id arrays"),
        ({"model": "embedder", "input": [[1, 2]]}, ErrorKind.INVALID, "check_embedding_ctx"),
        ({"model": "embedder", "input": ["a", None]}, ErrorKind.INVALID, "input[1]:"),
        ({"model": "embedder"}, ErrorKind.INVALID, "input: Field required"),
        ({"input": "a"}, ErrorKind.INVALID, "model: Field required"),
        (
            {"model": "embedder", "input": "a", "modality": "video"},
            ErrorKind.INVALID,
            "Invalid modality: 'video'. Supported: text, image, audio, auto",
        ),
        (
            {"model": "embedder", "input": "a", "modality": "audio"},
            ErrorKind.INVALID,
            "Model 'embedder' does not expose the 'audio' capability.",
        ),
        (
            {"model": "embedder", "input": "a", "encoding_format": "int8"},
            ErrorKind.INVALID,
            "encoding_format",
        ),
        (
            {"model": "embedder", "input": "a", "dimensions": 9},
            ErrorKind.INVALID,
            "dimensions=9 exceeds the model's embedding size 8",
        ),
        ({"model": "embedder", "input": "a", "dimensions": 0}, ErrorKind.INVALID, "dimensions"),
        (
            {"model": "embedder", "input": ["a"] * 5},
            ErrorKind.TOO_LARGE,
            "input has 5 items; at most 4",
        ),
        (["not", "an", "object"], ErrorKind.INVALID, "must be a JSON object"),
    ],
)
async def test_embedding_errors_are_typed_and_clear(core, backend, body, kind, fragment):
    error = await error_of(core, "/v1/embeddings", body)
    assert error.kind is kind
    assert fragment in error.message
    assert backend.calls == []


async def test_auto_mixes_text_and_images_in_input_order(core, backend):
    items = ["a red shirt", "https://img.example/1.png", "plain", "data:image/png;base64,AAAA"]
    body = await core.dispatch(
        "/v1/embeddings", {"model": "clip", "input": items, "modality": "auto"}
    )
    got = [np.array(d["embedding"]) for d in body["data"]]
    assert np.allclose(got[0], fake_vector("a red shirt"))
    assert np.allclose(got[1], fake_vector(f"image:{items[1]}"))
    assert np.allclose(got[2], fake_vector("plain"))
    assert np.allclose(got[3], fake_vector(f"image:{items[3]}"))
    (call,) = backend.calls  # one batch for texts and images alike, admitted once
    assert [type(item).__name__ for item in call[1]] == ["str", "FakeImage", "str", "FakeImage"]
    assert backend.admissions == [4]


async def test_text_modality_embeds_urls_as_text(core, backend):
    await core.dispatch("/v1/embeddings", {"model": "embedder", "input": "https://x.test/a.png"})
    assert backend.calls == [("embed", ["https://x.test/a.png"])]


async def test_image_errors_stop_before_inference(core, backend):
    error = await error_of(
        core, "/v1/embeddings", {"model": "clip", "input": ["ok", "bad"], "modality": "image"}
    )
    assert error.message == "input[1]: bad image 'bad'"
    assert backend.calls == []


async def test_rerank_sorts_by_score_with_original_indices(core):
    docs = ["nothing here", "paris is the capital of france", "capital city"]
    body = await core.dispatch(
        "/v1/rerank",
        {"model": "reranker", "query": "capital of france", "docs": docs, "return_docs": True},
    )
    assert [r["index"] for r in body["results"]] == [1, 2, 0]
    # a string document comes back as Cohere v1, Jina and vLLM reply: {"text": ...}
    assert [r["document"] for r in body["results"]] == [{"text": docs[i]} for i in (1, 2, 0)]
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert body["object"] == "rerank" and body["usage"]["total_tokens"] == 9
    assert body["data"] == body["results"]  # Voyage's name of the same results


async def test_rerank_object_documents_come_back_as_sent(core):
    docs = [{"text": "a cat", "id": 7}, "a dog"]
    body = {"model": "reranker", "query": "cat", "documents": docs, "return_documents": True}
    results = (await core.dispatch("/v1/rerank", body))["results"]
    assert [r["document"] for r in results] == [docs[0], {"text": "a dog"}]


async def test_rerank_top_n_and_no_documents_by_default(core):
    body = await core.dispatch(
        "/v1/rerank",
        {"model": "reranker", "query": "france", "documents": ["a", "france", "b"], "top_n": 1},
    )
    # the backend gives logits; the reply is their sigmoid unless raw_scores
    assert body["results"] == [{"index": 1, "relevance_score": pytest.approx(1 / (1 + np.exp(-1)))}]


async def test_rerank_empty_documents_returns_no_results(core, backend):
    body = await core.dispatch("/v1/rerank", {"model": "reranker", "query": "q", "docs": []})
    assert body["results"] == [] and backend.calls == []


@pytest.mark.parametrize(
    ("body", "kind", "fragment"),
    [
        (
            {"model": "embedder", "query": "q", "docs": ["a"]},
            ErrorKind.INVALID,
            "does not expose the 'rerank' capability. Detected capabilities: embed.",
        ),
        ({"model": "x", "query": "q", "docs": ["a"]}, ErrorKind.NOT_FOUND, "Model 'x'"),
        ({"model": "reranker", "docs": ["a"]}, ErrorKind.INVALID, "query: Field required"),
        ({"model": "reranker", "query": "q"}, ErrorKind.INVALID, "documents: Field required"),
        ({"model": "reranker", "query": "q", "docs": ["a", 3]}, ErrorKind.INVALID, "docs[1]"),
        (
            {"model": "reranker", "query": "q", "docs": ["a"], "top_n": 0},
            ErrorKind.INVALID,
            "top_n",
        ),
        (
            {"model": "reranker", "query": "q", "docs": ["a"] * 5},
            ErrorKind.TOO_LARGE,
            "documents has 5 items",
        ),
    ],
)
async def test_rerank_errors(core, body, kind, fragment):
    error = await error_of(core, "/v1/rerank", body)
    assert error.kind is kind and fragment in error.message


async def test_engine_failure_is_a_clean_internal_error(make_settings, caplog):
    core = Core(
        make_settings(), FakeBackend(fail_with=RuntimeError("CUDA exploded at 0x1")), FakeMedia()
    )
    error = await error_of(core, "/v1/embeddings", {"model": "embedder", "input": "a"})
    assert error.kind is ErrorKind.INTERNAL
    assert "0x1" not in error.message and "Traceback" not in error.message
    assert "CUDA exploded" in caplog.text


async def test_not_ready_and_unknown_route(core, backend):
    assert (await error_of(core, "/v1/chat", {})).kind is ErrorKind.NOT_FOUND
    backend.loaded = False  # models still loading
    assert (await error_of(core, "/v1/models", None)).kind is ErrorKind.NOT_READY
