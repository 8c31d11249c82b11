"""End to end over HTTP: long-document windows, the real cohere SDK (v1 and v2), Jina and
Voyage shapes, and /v1/tokenize, against the real service and tiny models."""

from __future__ import annotations

import cohere
import httpx
import pytest

from handlers.engine.windows import WINDOW_OVERLAP
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID
from tests.oracles import TOLERANCE, assert_rerank_matches, rerank_scores

QUERY = "capital of france"  # 3 tokens: with 3 pair specials, windows of 122 of 128 tokens
ROOM = 128 - 3 - 3
FILLER = ["the"] * 150  # every word of the tiny vocabulary is one token
TAIL = "paris is the capital city of france".split()


def windows(words: list[str]) -> list[str]:
    """The documented windows of a text of one-token words."""
    out, start = [], 0
    while start + ROOM < len(words):
        out.append(" ".join(words[start : start + ROOM]))
        start += ROOM - WINDOW_OVERLAP
    return [*out, " ".join(words[start:])]


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=60) as session:
        yield session


def test_a_relevant_passage_past_the_first_window_scores_as_its_window(http, tiny_models):
    folder = tiny_models[RERANK_ID]
    long_doc = " ".join(FILLER + TAIL)
    body = {"model": RERANK_ID, "query": QUERY, "documents": ["a dog", long_doc]}
    reply = http.post("/v1/rerank", json={**body, "raw_scores": True}).json()
    scores = {r["index"]: r["relevance_score"] for r in reply["results"]}
    parts = windows(FILLER + TAIL)
    by_window = rerank_scores(folder, QUERY, parts, raw_scores=True)
    assert len(parts) == 2 and by_window[1] > by_window[0] + 10 * TOLERANCE
    assert abs(scores[1] - by_window[1]) <= TOLERANCE  # the window past the first
    truncated = rerank_scores(folder, QUERY, [long_doc], raw_scores=True)[0]
    assert abs(truncated - by_window[0]) <= TOLERANCE  # what reading one window gives
    assert abs(scores[0] - rerank_scores(folder, QUERY, ["a dog"], raw_scores=True)[0]) <= 1e-4
    # usage: every (query, window) pair with its special tokens
    pairs = [3 + 3 + 2] + [3 + 3 + len(part.split()) for part in parts]
    assert reply["usage"]["total_tokens"] == sum(pairs)
    capped = http.post("/v1/rerank", json={**body, "max_tokens_per_doc": 100}).json()
    first_100 = rerank_scores(folder, QUERY, [" ".join(FILLER[:100])], raw_scores=False)[0]
    assert (
        abs(
            capped["results"][[r["index"] for r in capped["results"]].index(1)]["relevance_score"]
            - first_100
        )
        <= TOLERANCE
    )


def test_a_query_without_room_for_a_window_is_413(http):
    body = {"model": RERANK_ID, "query": " ".join(["cat"] * 130), "documents": ["a"]}
    reply = http.post("/v1/rerank", json=body)
    assert reply.status_code == 413
    assert reply.json()["error"]["message"].startswith("The query has 130 tokens")


@pytest.fixture(scope="module")
def co(server) -> cohere.Client:
    return cohere.Client(api_key="unused", base_url=server.url, timeout=60)


def test_cohere_v1_sdk_strings_without_model(co, tiny_models):
    docs = ["a cat on the house", "the weather today", "a dog"]
    reply = co.rerank(query="cat", documents=docs, top_n=2, return_documents=True)
    results = [  # Cohere v1's idiom: result.document.text
        {
            "index": r.index,
            "relevance_score": r.relevance_score,
            "document": {"text": r.document.text},
        }
        for r in reply.results
    ]
    request = {"query": "cat", "documents": docs, "top_n": 2, "return_documents": True}
    assert_rerank_matches(tiny_models[RERANK_ID], request, results)


def test_cohere_v1_sdk_objects_with_rank_fields(co, tiny_models):
    docs = [
        {"title": "paris", "text": "the capital city", "id": 1},
        {"title": "rain", "text": "cold weather today", "id": 2},
    ]
    reply = co.rerank(
        model=RERANK_ID,
        query=QUERY,
        documents=docs,
        rank_fields=["title", "text"],
        return_documents=True,
    )
    read = [f"title: {d['title']}\ntext: {d['text']}" for d in docs]
    expected = rerank_scores(tiny_models[RERANK_ID], QUERY, read, raw_scores=False)
    for result in reply.results:
        assert abs(result.relevance_score - expected[result.index]) <= TOLERANCE
        document = result.document
        kept = document if isinstance(document, dict) else document.dict()
        assert kept == docs[result.index]  # every field as sent
    assert sorted(r.index for r in reply.results) == [0, 1]


def test_cohere_v2_sdk_with_max_tokens_per_doc(server, tiny_models):
    co2 = cohere.ClientV2(api_key="unused", base_url=server.url, timeout=60)
    docs = ["a cat on the house", "the weather today", " ".join(FILLER + TAIL)]
    reply = co2.rerank(model=RERANK_ID, query=QUERY, documents=docs, max_tokens_per_doc=100)
    read = [*docs[:2], " ".join(FILLER[:100])]
    request = {"query": QUERY, "documents": read}
    results = [{"index": r.index, "relevance_score": r.relevance_score} for r in reply.results]
    assert_rerank_matches(tiny_models[RERANK_ID], request, results)
    assert reply.meta.billed_units.input_tokens > 0


def test_jina_and_voyage_shapes(http, tiny_models):
    docs = [{"text": "a cat on the house"}, {"text": "the weather today"}, {"text": "a dog"}]
    body = {"model": RERANK_ID, "query": "cat", "documents": docs, "return_documents": True}
    jina = http.post("/v1/rerank", json={**body, "top_n": 2}).json()
    texts = {"query": "cat", "documents": [d["text"] for d in docs], "top_n": 2}
    assert_rerank_matches(
        tiny_models[RERANK_ID],
        texts,
        [{k: v for k, v in r.items() if k != "document"} for r in jina["results"]],
    )
    assert [r["document"] for r in jina["results"]] == [docs[r["index"]] for r in jina["results"]]
    voyage = http.post("/v1/rerank", json={**body, "top_k": 2}).json()
    assert voyage["results"] == jina["results"]


@pytest.mark.parametrize(
    ("model", "texts"),
    [
        (EMBED_ID, ["hello world", "a quick brown fox jumps over the lazy dog"]),
        (CLIP_ID, ["hello world", "a red dress"]),  # within its 20 tokens (character BPE)
    ],
)
def test_tokenize_counts_agree_with_usage(http, model, texts):
    tokens = http.post("/v1/tokenize", json={"model": model, "input": texts}).json()
    usage = http.post("/v1/embeddings", json={"model": model, "input": texts}).json()
    assert sum(d["count"] for d in tokens["data"]) == usage["usage"]["total_tokens"]


def test_tokenize_matches_the_models_tokenizer_and_never_truncates(http, tiny_models):
    from transformers import AutoTokenizer

    text = " ".join(["cat"] * 300) + " xyzzy"
    reply = http.post("/v1/tokenize", json={"model": RERANK_ID, "input": text}).json()
    (data,) = reply["data"]
    expected = AutoTokenizer.from_pretrained(tiny_models[RERANK_ID])(text)["input_ids"]
    assert data["ids"] == expected and data["count"] == 303 > 128
    assert data["tokens"][-2:] == ["[UNK]", "[SEP]"]
    start, end = data["offsets"][-2]
    assert text[start:end] == "xyzzy"
    bare = http.post(
        "/v1/tokenize", json={"model": EMBED_ID, "input": "a cat", "add_special_tokens": False}
    ).json()
    assert bare["data"][0]["tokens"] == ["a", "cat"] and bare["data"][0]["count"] == 2


def test_openapi_lists_tokenize_and_the_new_rerank_fields(http):
    spec = http.get("/v1/openapi.json").json()
    assert "/v1/tokenize" in spec["paths"]
    rerank = spec["paths"]["/v1/rerank"]["post"]["requestBody"]["content"]["application/json"]
    fields = set(rerank["schema"]["properties"])
    assert {"max_tokens_per_doc", "max_chunks_per_doc", "rank_fields"} <= fields
