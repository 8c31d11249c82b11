"""Embeddings options in the core (fake backend): prompts, truncation, batch keys, identity."""

from __future__ import annotations

import httpx
import pytest

from handlers.api.http import V1App
from handlers.core.dispatch import Core
from handlers.engine.seam import EmbedKey
from handlers.errors import ErrorKind
from tests.fake_media import FakeMedia
from tests.fakes import FakeBackend
from tests.helpers import embed_error, embed_reply


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({}, "a b"),
        ({"prompt_name": "query"}, "query: a b"),
        ({"input_type": "search_query"}, "query: a b"),
        ({"input_type": "query"}, "query: a b"),
        ({"input_type": "search_document"}, "passage: a b"),
        ({"input_type": "document"}, "passage: a b"),
        ({"input_type": "classification"}, "a b"),  # the model has no such prompt
        ({"input_type": "clustering"}, "a b"),
    ],
)
async def test_prompts_prefix_the_texts(core, backend, body, text):
    await embed_reply(core, **body)
    assert backend.calls == [("embed", [text])]


async def test_prompt_errors(core, backend):
    both = await embed_error(core, prompt_name="query", input_type="query")
    assert (both.kind, both.param) == (ErrorKind.INVALID, "prompt_name")
    unknown = await embed_error(core, prompt_name="passage")
    assert unknown.kind is ErrorKind.INVALID
    assert (
        unknown.message == "Model 'embedder' has no prompt 'passage'. Its prompts: query, document."
    )
    bad_type = await embed_error(core, input_type="search")
    assert bad_type.param == "input_type"
    assert backend.calls == []


async def test_truncate_false_refuses_the_first_long_input_by_index(core, backend):
    body = {
        "input": ["short", "one two three four five six seven eight nine ten eleven twelve " * 2]
    }
    error = await embed_error(core, truncate=False, **body)
    assert error.kind is ErrorKind.TOO_LARGE and error.param == "input"
    assert error.message == (
        "input[1] has 26 tokens; the model's context length is 16 tokens and truncate is false."
    )
    assert [name for name, _ in backend.calls] == ["count"] and backend.admissions == []
    await embed_reply(core, truncate=False, input=["short", "a b c"])  # within the limit: embedded
    assert backend.calls[-2:] == [("count", ["short", "a b c"]), ("embed", ["short", "a b c"])]
    assert backend.lengths[-1] == [3, 5]  # the counts handed on: the scheduler needs no other


async def test_truncation_side_and_normalize_are_the_batch_key(core, backend):
    await embed_reply(core)
    await embed_reply(core, truncation_direction="left", normalize=False)
    assert backend.keys == [EmbedKey("right", True), EmbedKey("left", False)]
    assert (await embed_error(core, truncation_direction="middle")).param == "truncation_direction"


async def test_models_describe_prompts_and_identity(core):
    cards = {card["id"]: card for card in (await core.dispatch("/v1/models"))["data"]}
    embedder = cards["embedder"]
    assert embedder["prompts"] == ["query", "document"]
    assert embedder["input_types"] == {
        "search_query": "query",
        "query": "query",
        "search_document": "document",
        "document": "document",
        "classification": None,
        "clustering": None,
        "image": None,
    }
    assert embedder["max_input_tokens"] == 16 and embedder["normalized"] is True
    assert embedder["fingerprint"] == "0123456789abcdef"
    assert "fingerprint" not in cards["reranker"]


async def test_the_fingerprint_is_in_the_body_and_the_http_header(make_settings):
    core = Core(make_settings(), FakeBackend(), FakeMedia())
    app = V1App(core=lambda: core)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        reply = await client.post("/embeddings", json={"model": "embedder", "input": "a"})
        models = await client.get("/models")
    assert reply.json()["fingerprint"] == "0123456789abcdef"
    assert reply.headers["x-embedding-fingerprint"] == "0123456789abcdef"
    assert "x-embedding-fingerprint" not in models.headers
