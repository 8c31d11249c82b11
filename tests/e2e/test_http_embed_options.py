"""Embeddings options over HTTP through the real OpenAI SDK (extra_body): quantised types,
prompts, truncation, the fingerprint header, and /v1/models' identity fields."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from handlers.core.vectors import quantize
from tests.conftest import CLIP_ID, EMBED_ID, RERANK_ID


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def unit(values) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize("kind", ["int8", "uint8", "binary", "ubinary"])
def test_quantised_types_through_the_sdk_need_encoding_format_float(client, kind):
    text = ["a red dress", "the weather today"]
    floats = client.embeddings.create(model=EMBED_ID, input=text, encoding_format="float")
    typed = client.embeddings.create(
        model=EMBED_ID, input=text, encoding_format="float", extra_body={"embedding_type": kind}
    )
    cut = client.embeddings.create(
        model=EMBED_ID,
        input=text,
        encoding_format="float",
        dimensions=16,
        extra_body={"embedding_type": kind},
    )
    for full, quantised, short in zip(floats.data, typed.data, cut.data, strict=True):
        expected = quantize(unit(full.embedding)[None], kind)[0].tolist()
        assert quantised.embedding == expected
        assert short.embedding == quantize(unit(full.embedding[:16])[None], kind)[0].tolist()
    assert len(typed.data[0].embedding) == (32 if kind.endswith("int8") else 4)
    # The SDK's default asks for base64 and decodes float32: one byte per value reads wrong.
    garbled = client.embeddings.create(
        model=EMBED_ID, input=text, extra_body={"embedding_type": kind}
    )
    assert len(garbled.data[0].embedding) == len(typed.data[0].embedding) // 4


def test_base64_of_a_quantised_type_is_its_raw_bytes(server):
    body = {"model": EMBED_ID, "input": "a cat", "embedding_type": "int8"}
    listed = httpx.post(f"{server.url}/v1/embeddings", json=body, timeout=30).json()
    packed = httpx.post(
        f"{server.url}/v1/embeddings", json={**body, "encoding_format": "base64"}, timeout=30
    ).json()
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert np.frombuffer(raw, np.int8).tolist() == listed["data"][0]["embedding"]


def test_prompts_truncation_and_normalize_through_the_sdk(client):
    prompted = client.embeddings.create(
        model=EMBED_ID, input="the cat", encoding_format="float", extra_body={"input_type": "query"}
    )
    prefixed = client.embeddings.create(
        model=EMBED_ID, input="query : the cat", encoding_format="float"
    )
    assert np.allclose(prompted.data[0].embedding, prefixed.data[0].embedding, atol=1e-6)
    assert prompted.usage.total_tokens == prefixed.usage.total_tokens
    raw = client.embeddings.create(
        model=EMBED_ID, input="the cat", encoding_format="float", extra_body={"normalize": False}
    )
    assert not np.isclose(np.linalg.norm(raw.data[0].embedding), 1.0, atol=1e-3)
    with pytest.raises(openai.APIStatusError) as too_long:
        client.embeddings.create(
            model=EMBED_ID, input=["ok", "cat " * 300], extra_body={"truncate": False}
        )
    assert too_long.value.status_code == 413
    assert too_long.value.body["message"] == (
        "input[1] has 302 tokens; the model's context length is 128 tokens and truncate is false."
    )
    with pytest.raises(openai.BadRequestError) as unknown:
        client.embeddings.create(model=EMBED_ID, input="x", extra_body={"prompt_name": "passage"})
    assert unknown.value.body["message"] == (
        f"Model '{EMBED_ID}' has no prompt 'passage'. Its prompts: query, document."
    )
    assert unknown.value.body["param"] == "prompt_name"


def test_fingerprint_header_body_and_model_card_agree(server, client):
    reply = httpx.post(
        f"{server.url}/v1/embeddings", json={"model": EMBED_ID, "input": "a cat"}, timeout=30
    )
    cards = {m.id: m.model_extra for m in client.models.list().data}
    fingerprint = cards[EMBED_ID]["fingerprint"]
    assert reply.headers["x-embedding-fingerprint"] == reply.json()["fingerprint"] == fingerprint
    assert (
        cards[EMBED_ID]
        | {
            "max_input_tokens": 128,
            "dimensions": 32,
            "pooling": "mean",
            "normalized": True,
            "prompts": ["query", "document"],
            "backend": "torch",
            "dtype": "float32",
        }
        == cards[EMBED_ID]
    )
    assert cards[EMBED_ID]["revision"].startswith("sha256:")
    assert cards[CLIP_ID]["fingerprint"] != fingerprint and cards[CLIP_ID]["max_input_tokens"] > 0
    assert "fingerprint" not in cards[RERANK_ID]
