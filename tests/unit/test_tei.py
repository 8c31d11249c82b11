"""TEI's routes through the core over the fake backend: each shape (bare lists, TEI's field
names), the model a route answers for, TEI's errors and statuses (the real models and
clients are tests/e2e/test_tei_clients.py's)."""

from __future__ import annotations

import numpy as np
import pytest

from handlers.errors import ErrorKind, ServiceError, tei_error_body
from tests.fakes import fake_sparse, fake_vector

TEXT = "the cat sat on the mat"


async def tei_error(core, route: str, body) -> tuple[int, dict]:
    with pytest.raises(ServiceError) as caught:
        await core.dispatch(route, body)
    assert caught.value.dialect == "tei"
    return tei_error_body(caught.value)


@pytest.mark.parametrize("inputs", [TEXT, [TEXT], [TEXT, "hello"]])
async def test_embed_is_a_bare_list_of_the_first_embedders_vectors(core, inputs):
    reply = await core.dispatch("/embed", {"inputs": inputs})
    texts = [inputs] if isinstance(inputs, str) else inputs
    assert len(reply) == len(texts)
    for got, text in zip(reply, texts, strict=True):
        assert np.allclose(got, fake_vector(text), atol=1e-6)


async def test_embed_cuts_dimensions_then_normalises_and_reads_token_ids(core):
    (cut,) = await core.dispatch("/embed", {"inputs": TEXT, "dimensions": 3})
    want = fake_vector(TEXT)[:3]
    assert np.allclose(cut, want / np.linalg.norm(want), atol=1e-6)
    (raw,) = await core.dispatch("/embed", {"inputs": TEXT, "dimensions": 3, "normalize": False})
    assert np.allclose(raw, want, atol=1e-6)
    # the fake tokenizer's id n is a word of n letters; 5 is [SEP], dropped
    reply = await core.dispatch("/embed", {"inputs": [[3, 2, 5], "hi"]})
    assert np.allclose(reply[0], fake_vector("xxx xx"), atol=1e-6)
    (flat,) = await core.dispatch("/embed", {"inputs": [3, 2]})
    assert np.allclose(flat, fake_vector("xxx xx"), atol=1e-6)


async def test_embed_passes_truncation_and_prompt_as_ours(core, backend):
    body = {"inputs": "a", "truncation_direction": "Left", "prompt_name": "query"}
    await core.dispatch("/embed", body)
    assert backend.keys[-1].truncation_direction == "left"
    assert backend.calls[-1] == ("embed", ["query: a"])


async def test_embed_sparse_gives_index_value_pairs(core):
    (row,) = await core.dispatch("/embed_sparse", {"inputs": TEXT})
    want = fake_sparse(TEXT)
    assert row == [{"index": i, "value": v} for i, v in zip(want.indices, want.values, strict=True)]


async def test_a_body_naming_a_model_gets_that_model(core):
    (got,) = await core.dispatch("/embed", {"inputs": TEXT, "model": "clip"})
    assert np.allclose(got, fake_vector(TEXT), atol=1e-6)
    status, body = await tei_error(core, "/embed", {"inputs": TEXT, "model": "reranker"})
    assert (status, body["error_type"]) == (424, "Backend")


async def test_predict_single_pair_and_batch_highest_first(core):
    single = await core.dispatch("/predict", {"inputs": "great food"})
    assert [p["label"] for p in single] == sorted(
        ["negative", "positive"],
        key=lambda label: -next(p["score"] for p in single if p["label"] == label),
    )
    assert sum(p["score"] for p in single) == pytest.approx(1.0)
    batch = await core.dispatch("/predict", {"inputs": [["a", "b"], ["c"]], "model": "nli"})
    assert len(batch) == 2 and len(batch[0]) == 3
    assert [p["score"] for p in batch[0]] == sorted((p["score"] for p in batch[0]), reverse=True)
    status, body = await tei_error(core, "/predict", {"inputs": ["a", "b", "c"]})
    assert (status, body["error_type"]) == (422, "Validation")


async def test_similarity_is_the_cosine_to_the_source(core):
    body = {"inputs": {"source_sentence": "a b", "sentences": ["c", "a b"]}, "parameters": {}}
    got = await core.dispatch("/similarity", body)
    want = [float(fake_vector("a b") @ fake_vector(t)) for t in ("c", "a b")]
    assert got == pytest.approx(want, abs=1e-6)
    empty = {"inputs": {"source_sentence": "a", "sentences": []}}
    assert (await tei_error(core, "/similarity", empty))[0] == 400


async def test_rerank_speaks_tei_or_infinity_by_its_body(core):
    body = {"query": "cat mat", "texts": ["dog", "the cat", "cat on mat"], "return_text": True}
    tei = await core.dispatch("/rerank", body)
    assert [r["index"] for r in tei] == [2, 1, 0]
    assert tei[0]["text"] == "cat on mat" and set(tei[0]) == {"index", "score", "text"}
    ours = await core.dispatch("/v1/rerank", {"query": "cat mat", "documents": body["texts"]})
    by_index = {r["index"]: r["relevance_score"] for r in ours["results"]}
    assert all(r["score"] == pytest.approx(by_index[r["index"]]) for r in tei)
    infinity = await core.dispatch("/rerank", {"query": "cat mat", "documents": ["dog"]})
    assert infinity["object"] == "rerank"
    status, error = await tei_error(core, "/rerank", {"query": "q"})
    assert status == 422 and "documents" in error["error"] and "texts" in error["error"]
    assert (await tei_error(core, "/rerank", {"query": "q", "texts": []}))[0] == 400


async def test_rerank_ties_put_the_higher_index_first(core):
    body = {"query": "cat", "texts": ["cat", "dog", "cat"], "raw_scores": True}
    assert [r["index"] for r in await core.dispatch("/rerank", body)] == [2, 0, 1]


@pytest.mark.parametrize(
    ("route", "body", "status", "kind"),
    [
        ("/embed", {"inputs": ""}, 400, "Empty"),
        ("/embed", {"inputs": []}, 400, "Empty"),
        ("/embed", {"inputs": ["a", ""]}, 400, "Empty"),
        ("/embed", {"inputs": "a " * 40, "truncate": False}, 422, "Validation"),
        ("/embed", {"inputs": "a", "truncation_direction": "LEFT"}, 422, "Validation"),
        ("/embed", {}, 422, "Validation"),
        ("/embed_all", {"inputs": "a"}, 424, "Backend"),
        ("/decode", {"ids": []}, 400, "Empty"),
    ],
)
async def test_bad_requests_get_teis_status_and_error_type(core, route, body, status, kind):
    got, error = await tei_error(core, route, body)
    assert (got, error["error_type"]) == (status, kind), error


async def test_too_many_inputs_is_teis_422(core, make_settings, backend):
    from handlers.core.dispatch import Core
    from tests.fake_media import FakeMedia

    small = Core(make_settings(MAX_CLIENT_BATCH_SIZE="2"), backend, FakeMedia())
    status, error = await tei_error(small, "/embed", {"inputs": ["a", "b", "c"]})
    assert (status, error["error_type"]) == (422, "Validation") and "inputs" in error["error"]


async def test_tokenize_gives_byte_offsets_and_special_tokens(core):
    (tokens,) = await core.dispatch("/tokenize", {"inputs": "héllo wörld"})
    assert [t["special"] for t in tokens] == [True, False, False, True]
    assert tokens[0] == {"id": 5, "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert tokens[1] == {"id": 5, "text": "héllo", "special": False, "start": 0, "stop": 6}
    assert tokens[2] == {"id": 5, "text": "wörld", "special": False, "start": 7, "stop": 13}
    (prompted,) = await core.dispatch("/tokenize", {"inputs": "a", "prompt_name": "query"})
    assert [t["text"] for t in prompted[1:-1]] == ["query:", "a"]


async def test_decode_and_info(core):
    assert await core.dispatch("/decode", {"ids": [3, 5]}) == ["xxx"]
    assert await core.dispatch("/decode", {"ids": [[3, 5]], "skip_special_tokens": False}) == [
        "xxx xxxxx"
    ]
    info = await core.dispatch("/info")
    assert info["model_id"] == "embedder" and info["model_type"] == {"embedding": {"pooling": None}}
    assert info["max_input_length"] == 16 and info["auto_truncate"] is True


async def test_root_runs_the_first_models_route_or_similarity(core):
    (vector,) = await core.dispatch("/", {"inputs": TEXT})
    assert np.allclose(vector, fake_vector(TEXT), atol=1e-6)
    body = {"inputs": {"source_sentence": "a", "sentences": ["a"]}}
    assert await core.dispatch("/", body) == pytest.approx([1.0])


def test_error_kinds_map_to_teis_statuses():
    def status(kind: ErrorKind, code: str | None = None) -> tuple[int, str]:
        got, body = tei_error_body(ServiceError(kind, "m", code=code))
        return got, body["error_type"]

    assert status(ErrorKind.INVALID) == (422, "Validation")
    assert status(ErrorKind.INVALID, "empty") == (400, "Empty")
    assert status(ErrorKind.TOO_LARGE, "input_too_long") == (422, "Validation")
    assert status(ErrorKind.TOO_LARGE, "request_too_large") == (413, "Validation")
    assert status(ErrorKind.OVERLOADED) == (429, "Overloaded")
    assert status(ErrorKind.NOT_READY) == (503, "Unhealthy")
    assert status(ErrorKind.INTERNAL) == (424, "Backend")
