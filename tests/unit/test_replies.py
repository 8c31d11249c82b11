"""Every operation's reply is what its reply model (the OpenAPI document's schema) says:
each example body, and the variants of each dialect, answered through the core and
validated by the operation's own reply model."""

from __future__ import annotations

import pytest
from pydantic import RootModel, ValidationError

from handlers.api.wire import plain
from handlers.core.table import OPERATIONS

MODELS = {
    "embed": "embedder",
    "rerank": "reranker",
    "classify": "nli",
    "sparse_embed": "splade",
    None: "embedder",
}
# bodies beyond the examples: each shape a reply can take
VARIANTS = {
    "/v1/embeddings": [
        {"encoding_format": "base64"},
        {"embedding_type": "int8", "dimensions": 4},
        {"input": [{"image": "https://example.com/a.png"}], "model": "clip"},
    ],
    "/v1/rerank": [{"return_documents": True, "top_n": 1}],
    "/rerank": [{"return_documents": True, "raw_scores": True}],
    "/v2/rerank": [{"return_documents": True}],
    "/v2/embed": [{"embedding_types": ["float", "int8", "ubinary", "base64"]}],
    "/v1/embed": [{"embedding_types": ["int8"]}],
    "/v1/tokenize": [{"add_special_tokens": False}],
    "/v1/classify": [{"input": ["a text", ["a premise", "a hypothesis"]], "raw_scores": True}],
    "/classify": [{"input": "one text", "model": "sentiment"}],
    "/v1/score": [{"model": "embedder"}, {"text_1": ["a", "b"], "text_2": ["c", "d"]}],
    "/embed": [{"inputs": ["a", [3, 2]], "dimensions": 4}],
    "/predict": [{"inputs": [["a", "b"], ["c", "d"]]}],
    "/tokenize": [{"inputs": ["a", "b c"], "add_special_tokens": False}],
    "/decode": [{"ids": [3, 4]}],
}
CASES = [
    (op, {**({"model": MODELS[op.capability]} if op.request else {}), **op.example, **variant})
    for op in OPERATIONS
    if op.capability in MODELS  # /embed_all: the fake backend has no multi-vector model
    for variant in [{}, *VARIANTS.get(op.path, [])]
]


@pytest.mark.parametrize(
    ("op", "body"), CASES, ids=[f"{op.path}-{i}" for i, (op, _) in enumerate(CASES)]
)
async def test_the_reply_is_what_its_model_says(core, op, body):
    reply = plain(await core.dispatch(op.path, body if op.request else None))
    try:
        op.reply.model_validate(reply, strict=False)
    except ValidationError as error:  # pragma: no cover - the failure message
        pytest.fail(f"{op.path} replied outside {op.reply.__name__}: {error}")
    if issubclass(op.reply, RootModel):  # a bare list (TEI's), or one of two shapes
        return
    extra = set(reply) - set(op.reply.model_fields)
    assert not extra, f"{op.path} replies fields its model does not declare: {extra}"
