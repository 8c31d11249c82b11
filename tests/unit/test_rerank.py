"""Rerank windows, client shapes (Cohere v1/v2, Jina, Voyage) and /v1/tokenize on a fake backend."""

from __future__ import annotations

import pytest

from handlers.core.dispatch import Core
from handlers.core.rerank import document_texts
from handlers.engine.windows import DEFAULT_MAX_TOKENS_PER_DOC, TextWindows
from handlers.errors import ErrorKind, ServiceError
from tests.fake_media import FakeMedia
from tests.fakes import FakeBackend, FakeTokenizer
from tests.helpers import error_of

# FakeTokenizer: 16 tokens of context, 3 pair specials, one token per word; with a
# one-word query a window holds 12 words and neighbours share 6.
FILLER = [f"w{i}" for i in range(30)]


def scored_texts(backend: FakeBackend) -> list[str]:
    (name, (_, texts)), *_ = backend.calls
    assert name == "rerank"
    return texts


async def test_a_long_document_is_read_in_overlapping_windows(core, backend):
    doc = " ".join([*FILLER[:25], "needle"])
    body = {"model": "reranker", "query": "needle", "documents": ["needle", doc, "w1"]}
    reply = await core.dispatch("/v1/rerank", body)
    windows = [" ".join(FILLER[0:12]), " ".join(FILLER[6:18]), " ".join(FILLER[12:24])]
    windows.append(" ".join([*FILLER[18:25], "needle"]))
    assert scored_texts(backend) == ["needle", *windows, "w1"]
    assert backend.admissions == [6]  # admission counts (query, window) pairs
    by_index = {r["index"]: r["relevance_score"] for r in reply["results"]}
    assert by_index[1] == by_index[0] > by_index[2]  # the best window's score
    assert reply["usage"]["total_tokens"] == 6 * 3


@pytest.mark.parametrize(
    ("limits", "read"),
    [
        ({"max_tokens_per_doc": 5}, [" ".join(FILLER[:5])]),
        ({"max_chunks_per_doc": 2}, [" ".join(FILLER[:12]), " ".join(FILLER[6:18])]),
    ],
)
async def test_max_tokens_and_chunks_cap_what_is_read(core, backend, limits, read):
    body = {"model": "reranker", "query": "q", "documents": [" ".join(FILLER)], **limits}
    await core.dispatch("/v1/rerank", body)
    assert scored_texts(backend) == read


def test_the_default_cap_is_documented():
    assert DEFAULT_MAX_TOKENS_PER_DOC == 4096


@pytest.mark.parametrize(
    ("body", "kind", "fragment"),
    [
        (
            {"query": " ".join(FILLER[:13]), "documents": ["a"]},
            ErrorKind.TOO_LARGE,
            "The query has 13 tokens; with 3 special tokens it leaves no room",
        ),
        (
            {"query": "q", "documents": ["a"], "max_tokens_per_doc": 9, "max_chunks_per_doc": 1},
            ErrorKind.INVALID,
            "not both",
        ),
        (
            {"query": "q", "documents": ["a", {"title": "t"}]},
            ErrorKind.INVALID,
            "documents[1]: the object has no 'text' field (or name the fields",
        ),
        (
            {"query": "q", "documents": [{"a": "x"}], "rank_fields": ["a", "b"]},
            ErrorKind.INVALID,
            "documents[0]: the object has no 'b' field.",
        ),
        (
            {"query": "q", "documents": ["a"], "model": None},
            ErrorKind.INVALID,
            "model: Input should be a valid string",
        ),
        (
            {"query": "q", "documents": [{"text": {}}]},
            ErrorKind.INVALID,
            "documents[0]: a document's 'text' field is a string",
        ),
        (
            {"query": "q", "docs": ["a", 3]},
            ErrorKind.INVALID,
            "docs[1]: a document is a string or an object",
        ),
    ],
)
async def test_rerank_request_errors(core, body, kind, fragment):
    error = await error_of(core, "/v1/rerank", {"model": "reranker", **body})
    assert error.kind is kind and fragment in error.message, error.message


def test_rank_fields_join_name_value_lines_in_order():
    docs = ["plain", {"text": "t", "title": "T", "year": 2024}, {"text": "only text"}]
    assert document_texts(docs, None) == ["plain", "t", "only text"]
    assert document_texts(docs[:2], ["title", "year"]) == ["plain", "title: T\nyear: 2024"]


async def test_object_documents_come_back_whole_and_top_k_is_top_n(core):
    docs = [{"text": "a cat", "id": 7}, {"text": "the sun", "meta": {"k": 1}}]
    body = {"query": "cat", "documents": docs, "return_documents": True, "top_k": 1}
    reply = await core.dispatch("/v1/rerank", body)  # no model: the only reranker serves
    assert reply["model"] == "reranker"
    assert reply["results"] == [
        {"index": 0, "relevance_score": reply["results"][0]["relevance_score"], "document": docs[0]}
    ]


async def test_model_is_required_when_several_rerankers_are_served(make_settings, backend):
    from handlers.model_info import ModelInfo

    backend.models()["other"] = ModelInfo("other", frozenset({"rerank"}), "fake", None, 1)
    core = Core(make_settings(), backend, FakeMedia())
    error = await error_of(core, "/v1/rerank", {"query": "q", "documents": ["a"]})
    assert error.kind is ErrorKind.INVALID and error.param == "model"
    assert "serves 2 rerankers: reranker, other" in error.message


async def test_v2_rerank_answers_in_cohere_v2_shape(core):
    body = {"model": "reranker", "query": "cat", "documents": ["a cat", "a dog"]}
    reply = await core.dispatch("/v2/rerank", body)
    assert set(reply) == {"id", "model", "results", "meta", "usage"}
    assert [set(r) for r in reply["results"]] == [{"index", "relevance_score"}] * 2
    assert reply["meta"]["billed_units"]["input_tokens"] == reply["usage"]["total_tokens"] == 6
    v1 = await core.dispatch("/v1/rerank", body)
    assert reply["results"] == v1["results"]
    asked = await core.dispatch("/v2/rerank", {**body, "return_documents": True})
    assert [r["document"] for r in asked["results"]] == [{"text": "a cat"}, {"text": "a dog"}]


async def test_tokenize_gives_ids_tokens_offsets_and_counts(core):
    body = {"model": "embedder", "input": ["a cat", "hello  world"]}
    reply = await core.dispatch("/v1/tokenize", body)
    assert reply["object"] == "list" and reply["model"] == "embedder"
    first, second = reply["data"]
    assert first["tokens"] == ["[CLS]", "a", "cat", "[SEP]"] and first["count"] == 4
    assert second["offsets"] == [[0, 0], [0, 5], [7, 12], [0, 0]]
    assert [d["index"] for d in reply["data"]] == [0, 1]
    bare = await core.dispatch(
        "/v1/tokenize", {**body, "input": "a cat", "add_special_tokens": False}
    )
    assert bare["data"][0]["tokens"] == ["a", "cat"] and bare["data"][0]["ids"] == [1, 3]


async def test_tokenize_errors(core, backend):
    assert (await error_of(core, "/v1/tokenize", {"model": "x", "input": "a"})).kind is (
        ErrorKind.NOT_FOUND
    )
    error = await error_of(core, "/v1/tokenize", {"model": "embedder", "input": [[1, 2]]})
    assert "send the text itself" in error.message
    backend.without_fast_tokenizer.add("clip")
    error = await error_of(core, "/v1/tokenize", {"model": "clip", "input": "a"})
    assert error.kind is ErrorKind.INVALID and "no fast tokenizer" in error.message


# ----------------------------------------------------------------- windows of a template's text
def text_windows(overhead: int) -> TextWindows:
    """FakeTokenizer's words; the rendered (query, empty document) takes `overhead` tokens
    plus one per word of the instruction."""
    return TextWindows(
        FakeTokenizer(), 16, lambda query, instruction: overhead + len((instruction or "").split())
    )


def test_template_windows_are_the_texts_of_token_windows_next_to_the_rendered_query():
    doc = "  " + " ".join(f"w{i}" for i in range(20)) + "  "
    planned = text_windows(6).plan("q", ["short doc", doc], None, None, None)
    # 16 - 6 = 10 words a window, 5 shared (half a window)
    assert planned.items == [
        "short doc",
        " ".join(f"w{i}" for i in range(0, 10)),
        " ".join(f"w{i}" for i in range(5, 15)),
        " ".join(f"w{i}" for i in range(10, 20)),
    ]
    assert planned.owners == [0, 1, 1, 1] and planned.lengths == [8, 16, 16, 16]
    assert planned.best([0.1, 0.5, 0.9, 0.2], 2) == [0.1, 0.9]
    capped = text_windows(6).plan("q", [doc], None, 1, None)
    assert capped.items == [" ".join(f"w{i}" for i in range(10))]
    instructed = text_windows(6).plan("q", [doc], None, 1, "two words")  # 8 words a window
    assert instructed.items == [" ".join(f"w{i}" for i in range(8))]


def test_a_query_whose_template_leaves_no_room_is_413():
    with pytest.raises(ServiceError) as caught:
        text_windows(16).plan("q", ["doc"], None, None, None)
    assert caught.value.kind is ErrorKind.TOO_LARGE and caught.value.param == "query"
    assert "takes 16 of its 16 tokens" in caught.value.message
