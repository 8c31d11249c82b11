"""Sparse embeddings through the core over the fake backend: the reply's shape, pruning,
tokens, the task a request sets, and the dense options refused (the real encoders' values
are tests/e2e/test_sparse.py's)."""

from __future__ import annotations

import pytest

from handlers.errors import ErrorKind, ServiceError
from tests.fakes import fake_sparse

TEXT = "a cat is on the big house of a cat"


async def test_each_input_gets_its_indices_and_values(core, backend):
    reply = await core.dispatch("/v1/embeddings", {"model": "splade", "input": [TEXT, "hi"]})
    for item, text in zip(reply["data"], [TEXT, "hi"], strict=True):
        want = fake_sparse(text)
        assert item["embedding"] == {"indices": want.indices, "values": want.values}
    assert reply["usage"]["prompt_tokens"] == len(TEXT.split()) + 2 + 3
    assert reply["fingerprint"] == "00112233445566ff"


async def test_top_k_threshold_and_tokens(core):
    want = fake_sparse(TEXT)
    body = {"model": "splade", "input": TEXT, "sparse_top_k": 2, "return_tokens": True}
    (item,) = (await core.dispatch("/v1/embeddings", body))["data"]
    largest = sorted(range(len(want.values)), key=lambda i: -want.values[i])[:2]
    assert item["embedding"]["indices"] == sorted(want.indices[i] for i in largest)
    assert item["embedding"]["tokens"] == [f"w{i}" for i in item["embedding"]["indices"]]
    body = {"model": "splade", "input": TEXT, "sparse_threshold": 0.35}
    (item,) = (await core.dispatch("/v1/embeddings", body))["data"]
    assert item["embedding"]["values"] == [v for v in want.values if v >= 0.35]
    assert 0 < len(item["embedding"]["values"]) < len(want.values)


@pytest.mark.parametrize(
    ("fields", "task"),
    [
        ({"input_type": "search_query"}, "query"),
        ({"input_type": "document"}, "document"),
        ({"prompt_name": "query"}, "query"),
        ({}, None),
    ],
)
async def test_the_request_sets_the_encoders_task(core, backend, fields, task):
    await core.dispatch("/v1/embeddings", {"model": "splade", "input": "a", **fields})
    assert backend.keys[-1].task == task


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"encoding_format": "base64"}, "encoding_format"),
        ({"dimensions": 4}, "dimensions"),
        ({"embedding_type": "int8"}, "embedding_type"),
        ({"normalize": False}, "normalize"),
    ],
)
async def test_dense_options_are_refused_by_name(core, backend, fields, param):
    with pytest.raises(ServiceError) as caught:
        await core.dispatch("/v1/embeddings", {"model": "splade", "input": "a", **fields})
    assert caught.value.kind is ErrorKind.INVALID and caught.value.param == param
    assert "only; this request asks model 'splade' for sparse embeddings" in caught.value.message
    assert not [c for c in backend.calls if c[0] == "embed"]


async def test_dense_only_routes_refuse_a_sparse_encoder(core):
    with pytest.raises(ServiceError) as caught:
        await core.dispatch("/v2/embed", {"model": "splade", "texts": ["a"]})
    assert "'embed' capability" in caught.value.message
    images = {"model": "splade", "input": [{"image": "https://example.com/a.png"}]}
    with pytest.raises(ServiceError) as caught:
        await core.dispatch("/v1/embeddings", images)
    assert "'image' capability" in caught.value.message


async def test_a_sparse_request_for_a_dense_model_is_refused(core):
    with pytest.raises(ServiceError) as caught:
        await core.dispatch(
            "/v1/embeddings", {"model": "embedder", "input": "a", "sparse_top_k": 3}
        )
    assert caught.value.param == "sparse_top_k"
    assert "applies to sparse embeddings only" in caught.value.message
    assert "the model gives dense" in caught.value.message
